"""The E2T model on small synthetic data: it learns, extrapolates, round-trips through save/load; and the ensemble."""

import numpy as np
import pytest
import torch

from e2t_al.config import E2TConfig, EnsembleConfig
from e2t_al.data.dataset import DataError
from e2t_al.model.baselines import RegressionNN
from e2t_al.model.e2t import Z_90, E2TRegressor, within_domain_slope
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import DescriptorInputs, subset_inputs


def synthetic(n_domains=6, per_domain=30, seed=0):
    """y = x₀ + 2·x₁ + noise, with each domain shifted along x₀: predicting a new domain is extrapolation."""
    rng = np.random.default_rng(seed)
    x, keys = [], []
    for d in range(n_domains):
        block = rng.normal(size=(per_domain, 5))
        block[:, 0] += 3.0 * d
        x.append(block)
        keys += [frozenset({f"D{d}"})] * per_domain
    x = np.vstack(x)
    y = x[:, 0] + 2.0 * x[:, 1] + 0.05 * rng.normal(size=len(x))
    return DescriptorInputs(torch.tensor(x, dtype=torch.float32), [f"x{i}" for i in range(5)]), y, keys


def small_config(seed=0, **training):
    cfg = E2TConfig.model_validate({
        "encoder": {"hidden": [32], "embedding_dim": 8, "descriptors": []},
        "episodes": {"query_size": 16},
        "training": {"max_steps": 150, "validate_every": 25, "patience": 3, "validation_domains": 1, "seed": seed, **training},
    })
    return cfg


def split(inputs, y, keys, test_domain="D5"):
    test = np.array([test_domain in k for k in keys])
    take = lambda mask: DescriptorInputs(inputs.x[torch.as_tensor(np.flatnonzero(mask))], inputs.names)  # noqa: E731
    return take(~test), y[~test], [k for k, t in zip(keys, test) if not t], take(test), y[test]


def test_e2t_predicts_an_unseen_domain():
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys, test_domain="D3")
    model = E2TRegressor(small_config()).fit(x_train, y_train, k_train, progress=False)
    prediction = model.predict(x_test, x_train, y_train)
    rmse = np.sqrt(np.mean((prediction - y_test) ** 2))
    assert rmse < 0.5 * y_test.std(), rmse  # a mean predictor would score y_test.std()
    assert model.validation_domains_ and model.validation_rmse_ is not None


def test_new_support_changes_predictions_without_retraining():
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys)
    model = E2TRegressor(small_config()).fit(x_train, y_train, k_train, progress=False)
    before = model.predict(x_test, x_train, y_train)
    shifted = model.predict(x_test, x_train, y_train + 10.0)  # the same support, every target +10
    np.testing.assert_allclose(shifted - before, 10.0, atol=1e-3)


def test_save_load_round_trip(tmp_path):
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, _ = split(inputs, y, keys)
    model = E2TRegressor(small_config()).fit(x_train, y_train, k_train, progress=False)
    path = model.save(tmp_path / "e2t.pt")
    loaded = E2TRegressor.load(path)
    assert loaded.config == model.config
    assert loaded.validation_rmse_ == model.validation_rmse_
    np.testing.assert_allclose(loaded.encoder.input_mean.numpy(), model.encoder.input_mean.numpy())  # feature scaling
    np.testing.assert_allclose(loaded.predict(x_test, x_train, y_train), model.predict(x_test, x_train, y_train), rtol=1e-6)


def test_unfitted_and_bad_inputs_are_clear_errors(tmp_path):
    inputs, y, keys = synthetic()
    with pytest.raises(RuntimeError, match="not fitted"):
        E2TRegressor().predict(inputs, inputs, y)
    with pytest.raises(DataError, match="NaN"):
        E2TRegressor(small_config()).fit(inputs, np.where(np.arange(len(y)) == 3, np.nan, y), keys, progress=False)
    with pytest.raises(DataError, match="no saved model"):
        E2TRegressor.load(tmp_path / "missing.pt")


def test_ensemble_members_differ_and_std_is_positive(tmp_path):
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys)
    config = EnsembleConfig(members=3, model=small_config())
    ensemble = E2TEnsemble(config, base_seed=7).fit(x_train, y_train, k_train, progress=False)
    members, member_stds = ensemble.member_intervals(x_test, x_train, y_train)
    assert members.shape == member_stds.shape == (3, len(y_test))
    assert len({m.config.training.seed for m in ensemble.members}) == 3
    mean, std = ensemble.predict(x_test, x_train, y_train)
    np.testing.assert_allclose(mean, members.mean(0))
    floor = np.mean([m.validation_rmse_**2 for m in ensemble.members])  # interval: validation_floor (the default)
    np.testing.assert_allclose(std, np.sqrt(members.var(0) + floor), rtol=1e-6)
    ensemble.config = config.model_copy(update={"interval": "head"})
    _, head_std = ensemble.predict(x_test, x_train, y_train)
    np.testing.assert_allclose(head_std, np.sqrt((member_stds**2).mean(0)), rtol=1e-6)
    assert np.all(std > 0) and np.all(head_std > 0) and not np.allclose(std, head_std)
    ratio = np.array([m.validation_std_quantile_scale_ / m.validation_std_scale_ for m in ensemble.members])
    assert not np.allclose(ratio, 1.0)
    _, quantile_std = ensemble.moments(members, member_stds, "head_quantile")  # each member's σ on its quantile scale
    np.testing.assert_allclose(quantile_std, np.sqrt(((ratio[:, None] * member_stds) ** 2).mean(0)), rtol=1e-6)
    ensemble.config = config
    loaded = E2TEnsemble.load(ensemble.save(tmp_path / "ensemble"))
    np.testing.assert_allclose(loaded.predict(x_test, x_train, y_train)[0], mean, rtol=1e-6)


def test_plain_regression_baseline_fits():
    inputs, y, keys = synthetic()
    x_train, y_train, _, x_test, y_test = split(inputs, y, keys, test_domain="D2")  # interpolation for the NN
    nn = RegressionNN(small_config()).fit(x_train, y_train, progress=False)
    assert nn.predict(x_test).shape == y_test.shape
    assert np.sqrt(np.mean((nn.predict(x_train) - y_train) ** 2)) < y_train.std()


def test_log_target_learns_a_multiplicative_trend_and_reports_target_units(tmp_path):
    inputs, y, keys = synthetic()
    y = np.exp(0.3 * y / y.std())  # positive, multiplicative in the domains' shift
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys, test_domain="D3")
    config = small_config()
    config.target_transform = "log"
    model = E2TRegressor(config).fit(x_train, y_train, k_train, progress=False)
    mean, std = model.predict(x_test, x_train, y_train, return_std=True)
    assert np.all(mean > 0) and np.all(std > 0)
    assert np.sqrt(np.mean((mean - y_test) ** 2)) < 0.5 * y_test.std()
    # doubling every support value doubles every prediction: the head works on log y
    np.testing.assert_allclose(model.predict(x_test, x_train, 2.0 * y_train), 2.0 * mean, rtol=1e-4)
    # the validation RMSE is in target units: recomputed from predictions on the held-out validation domain
    held = np.array([bool(k & set(model.validation_domains_)) for k in k_train])
    predicted = model.predict(subset_inputs(x_train, np.flatnonzero(held)), subset_inputs(x_train, np.flatnonzero(~held)),
                              y_train[~held])
    assert model.validation_rmse_ == pytest.approx(np.sqrt(np.mean((predicted - y_train[held]) ** 2)), rel=1e-5)
    loaded = E2TRegressor.load(model.save(tmp_path / "log.pt"))
    np.testing.assert_allclose(loaded.predict(x_test, x_train, y_train), mean, rtol=1e-6)
    with pytest.raises(DataError, match="positive"):
        E2TRegressor(config).fit(x_train, y_train - y_train.max(), k_train, progress=False)


def test_the_interval_is_calibrated_on_the_members_held_out_domains_and_survives_save_and_load(tmp_path):
    """On the held-out validation domain's materials the errors divided by c·s(x) have mean square 1 (c: the
    maximum-likelihood variance scale there), the factor is saved with the model, and a model saved without it falls
    back to its validation RMSE."""
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, _ = split(inputs, y, keys)
    model = E2TRegressor(small_config()).fit(x_train, y_train, k_train, progress=False)
    held = np.array([bool(k & set(model.validation_domains_)) for k in k_train])
    support, validation = subset_inputs(x_train, np.flatnonzero(~held)), subset_inputs(x_train, np.flatnonzero(held))
    predicted, head_std = model.predict(validation, support, y_train[~held], return_std=True)
    _, calibrated = model.interval_std(validation, support, y_train[~held])
    # head_std is float32, calibrated float64: the expectation in float64 too (a float times a float32 array stays float32)
    np.testing.assert_allclose(calibrated, model.validation_std_scale_ * head_std.astype(np.float64))
    assert np.mean(((predicted - y_train[held]) / calibrated) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert model.validation_std_scale_ > 1.0  # in-sample, the head underrates the error on an unseen domain
    # the quantile scale: ±z₀.₉₅ c_q s(x) holds 90% of the held-out errors (np.quantile interpolates: within a row)
    inside = np.abs(predicted - y_train[held]) <= Z_90 * model.validation_std_quantile_scale_ * head_std * (1 + 1e-6)
    assert abs(inside.mean() - 0.9) <= 1.0 / held.sum()
    held_keys = [k for k, h in zip(k_train, held) if h]
    assert model.validation_within_slope_ is not None
    assert model.validation_within_slope_ == within_domain_slope(predicted, y_train[held], held_keys)

    loaded = E2TRegressor.load(model.save(tmp_path / "m.pt"))
    assert loaded.validation_std_scale_ == model.validation_std_scale_
    assert loaded.validation_std_quantile_scale_ == model.validation_std_quantile_scale_
    assert loaded.validation_within_slope_ == model.validation_within_slope_
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    del checkpoint["validation_std_scale"]  # a model saved before the factor existed
    torch.save(checkpoint, tmp_path / "old.pt")
    mean, std = E2TRegressor.load(tmp_path / "old.pt").interval_std(x_test, x_train, y_train)
    np.testing.assert_allclose(std, np.full(len(mean), model.validation_rmse_))


def test_auxiliary_regression_loss_trains_a_different_encoder_that_still_extrapolates_and_saves(tmp_path):
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys, test_domain="D3")
    episodic = E2TRegressor(small_config()).fit(x_train, y_train, k_train, progress=False)
    mixed = E2TRegressor(small_config(auxiliary_regression_weight=1.0)).fit(x_train, y_train, k_train, progress=False)
    prediction = mixed.predict(x_test, x_train, y_train)
    assert not np.allclose(prediction, episodic.predict(x_test, x_train, y_train))  # the readout's loss shaped φ
    assert np.sqrt(np.mean((prediction - y_test) ** 2)) < 0.5 * y_test.std()
    assert not any("readout" in name for name in mixed.encoder.state_dict())  # the readout is discarded
    np.testing.assert_allclose(E2TRegressor.load(mixed.save(tmp_path / "m.pt")).predict(x_test, x_train, y_train), prediction, rtol=1e-5)


def test_linear_rbf_head_trains_extrapolates_and_round_trips(tmp_path):
    """The head's kernel is part of the model: training sees it, and a saved model predicts alike after loading
    (the random frequencies come back from the seed)."""
    inputs, y, keys = synthetic()
    x_train, y_train, k_train, x_test, y_test = split(inputs, y, keys, test_domain="D3")
    config = small_config().model_copy(update={"head": small_config().head.model_copy(update={"kernel": "linear_rbf", "rbf_features": 64})})
    model = E2TRegressor(config).fit(x_train, y_train, k_train, progress=False)
    prediction = model.predict(x_test, x_train, y_train)
    assert np.sqrt(np.mean((prediction - y_test) ** 2)) < 0.5 * y_test.std()
    assert model.fit_head(x_train, y_train).weights.shape == (8 + 64,)
    loaded = E2TRegressor.load(model.save(tmp_path / "rbf.pt"))
    np.testing.assert_allclose(loaded.predict(x_test, x_train, y_train), prediction, rtol=1e-5)


def test_members_trained_in_threads_start_from_their_own_seeded_weights(monkeypatch):
    """A campaign trains its members in parallel threads, and torch's generator is global. Here each thread is
    made to wait between seeding and drawing its weights, so an unguarded seed of one would land in the other."""
    import threading
    import time

    import e2t_al.model.e2t as e2t

    inputs, y, keys = synthetic(n_domains=4, per_domain=20)
    configs = [small_config(seed=seed, max_steps=25, refit_on_all=False) for seed in (0, 1)]
    alone = [E2TRegressor(c).fit(inputs, y, keys, progress=False) for c in configs]
    build = e2t.build_encoder

    def slow_build(*args, **kwargs):
        time.sleep(0.3)  # the other thread seeds meanwhile, unless the lock holds it back
        return build(*args, **kwargs)

    monkeypatch.setattr(e2t, "build_encoder", slow_build)
    together = [E2TRegressor(c) for c in configs]
    threads = [threading.Thread(target=m.fit, args=(inputs, y, keys), kwargs={"progress": False}) for m in together]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for a, b in zip(alone, together):
        for p, q in zip(a.encoder.parameters(), b.encoder.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
