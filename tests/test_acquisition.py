"""Acquisition over a tiny E2T ensemble, checked by hand; batch rules; the GP baseline through the same interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.acquisition import qExpectedImprovement, qLogExpectedImprovement, qUpperConfidenceBound

from e2t_al.acquisition.batch import Objective, build_acquisition, pool_predictions, propose_batch
from e2t_al.acquisition.models import E2TEnsembleModel, EnsembleMemberSampler, embedding_features, fit_gp
from e2t_al.acquisition.novelty import composition_novelty, embedding_novelty
from e2t_al.config import AcquisitionConfig, AdaptationConfig, E2TConfig, EncoderConfig, EnsembleConfig, TrainingConfig
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import DescriptorInputs

DOMAINS = ["A-X", "A-Y", "B-X", "B-Y", "C-X", "C-Y"]


@pytest.fixture(scope="module")
def tiny():
    """60 materials in 6 domains, y depends on the features and a domain shift; a 3-member ensemble (fast)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    domains = np.repeat(DOMAINS, 10)
    y = X[:, 0] - 0.5 * X[:, 1] + np.repeat(np.arange(6) * 0.3, 10) + 0.05 * rng.normal(size=60)
    config = EnsembleConfig(members=3, model=E2TConfig(
        encoder=EncoderConfig(hidden=[16], embedding_dim=8),
        training=TrainingConfig(max_steps=30, validation_domains=1, validate_every=10, patience=2)))
    keys = [frozenset([d]) for d in domains]
    ensemble = E2TEnsemble(config).fit(DescriptorInputs(torch.tensor(X, dtype=torch.float32), []), y, keys, progress=False)
    return X, y, domains, ensemble


def test_qei_and_qucb_equal_the_member_average_by_hand(tiny):
    X, y, _, ensemble = tiny
    support, query = np.arange(40), np.arange(40, 60)
    model = E2TEnsembleModel(ensemble, torch.tensor(X[support]), torch.tensor(y[support]))
    members = np.vstack([m.predict(DescriptorInputs(torch.tensor(X[query], dtype=torch.float32), []),
                                   DescriptorInputs(torch.tensor(X[support], dtype=torch.float32), []), y[support])
                         for m in ensemble.members])  # (K, m), computed without BoTorch
    best_f = float(np.median(members))  # half the member predictions improve on it
    Xq = torch.tensor(X[query]).unsqueeze(1)  # 20 x 1 x d: twenty q=1 batches
    sampler = EnsembleMemberSampler(3)

    ei = qExpectedImprovement(model, best_f=best_f, sampler=sampler)(Xq).detach().numpy()
    np.testing.assert_allclose(ei, np.maximum(members - best_f, 0).mean(0), rtol=1e-4, atol=1e-6)

    beta = 2.0
    ucb = qUpperConfidenceBound(model, beta=beta, sampler=sampler)(Xq).detach().numpy()
    mean = members.mean(0)
    np.testing.assert_allclose(ucb, mean + math.sqrt(beta * math.pi / 2) * np.abs(members - mean).mean(0), rtol=1e-4, atol=1e-6)

    log_ei = qLogExpectedImprovement(model, best_f=best_f, sampler=sampler)(Xq).detach().numpy()
    clear = ei > 0.05  # where the improvement is not tiny, the smoothed log-EI is the log of EI
    assert clear.sum() >= 3
    np.testing.assert_allclose(log_ei[clear], np.log(ei[clear]), atol=0.05)


def test_target_window_objective_prefers_values_closest_to_the_target(tiny):
    X, y, _, ensemble = tiny
    model = E2TEnsembleModel(ensemble, torch.tensor(X[:40]), torch.tensor(y[:40]))
    mean, _ = pool_predictions(model, torch.tensor(X[40:]))
    target = float(np.median(mean))
    config = AcquisitionConfig(function="exploit", batch_size=1)
    objective = Objective("target_window", target, target)
    acquisition = build_acquisition(model, config, objective, torch.tensor(X[:40]), y[:40])
    values = acquisition(torch.tensor(X[40:]).unsqueeze(1)).detach().numpy()
    members = model.posterior(torch.tensor(X[40:])).values[..., 0].numpy()  # (K, 20)
    np.testing.assert_allclose(values, -np.abs(members - target).mean(0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("function", ["qlogei", "qlognei", "qucb", "exploit", "explore"])
def test_batch_excludes_measured_and_pending_and_has_no_duplicates(tiny, function):
    X, y, domains, ensemble = tiny
    measured = np.zeros(60, dtype=bool)
    measured[:30] = True
    pending = np.zeros(60, dtype=bool)
    pending[[31, 35, 47]] = True
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    batch = propose_batch(model, torch.tensor(X), measured, y[measured], AcquisitionConfig(function=function, batch_size=6),
                          pending=pending, domains=domains)
    assert len(batch.indices) == 6 and len(set(batch.indices)) == 6
    assert not measured[batch.indices].any() and not pending[batch.indices].any()


def test_domain_rules_cap_a_domain_and_reserve_unexplored_places(tiny):
    X, y, domains, ensemble = tiny
    measured = np.isin(domains, ["A-X", "A-Y", "B-X"])
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    config = AcquisitionConfig(batch_size=6, max_per_domain=2)
    batch = propose_batch(model, torch.tensor(X), measured, y[measured], config, domains=domains)
    assert max(np.unique(domains[batch.indices], return_counts=True)[1]) <= 2

    measured[domains == "B-Y"] = False
    measured[domains == "C-X"] = True  # B-Y, C-Y unexplored; nothing left unmeasured in A-*, B-X, C-X
    measured[40:43] = False  # ... except three C-X candidates
    config = AcquisitionConfig(function="exploit", batch_size=4, reserve_unexplored=3)
    batch = propose_batch(model, torch.tensor(X), measured, y[measured], config, domains=domains)
    assert set(domains[batch.indices[:3]]) <= {"B-Y", "C-Y"}


def test_gp_baseline_runs_through_the_same_interface(tiny):
    X, y, domains, _ = tiny
    measured = np.arange(60) < 35
    gp = fit_gp(torch.tensor(X[measured]), torch.tensor(y[measured]))
    for function in ("qlogei", "qucb", "explore"):
        batch = propose_batch(gp, torch.tensor(X), measured, y[measured], AcquisitionConfig(function=function, batch_size=4),
                              domains=domains)
        assert len(set(batch.indices)) == 4 and not measured[batch.indices].any()
    mean, std = pool_predictions(gp, torch.tensor(X))
    assert mean.shape == std.shape == (60,) and (std > 0).all()


def test_gp_on_e2t_embeddings_runs_through_the_same_interface(tiny):
    X, y, domains, ensemble = tiny
    Z = embedding_features(ensemble, X)
    measured = np.arange(60) < 35
    gp = fit_gp(Z[measured], torch.tensor(y[measured]))
    batch = propose_batch(gp, Z, measured, y[measured], AcquisitionConfig(batch_size=4), domains=domains)
    assert len(set(batch.indices)) == 4 and not measured[batch.indices].any()


def test_instant_update_changes_predictions_without_training(tiny):
    X, y, domains, ensemble = tiny
    old = domains != "C-Y"
    model = E2TEnsembleModel(ensemble, torch.tensor(X[old]), torch.tensor(y[old]))
    new = np.flatnonzero(domains == "C-Y")[:5]
    updated = model.with_support(torch.tensor(X[old | np.isin(np.arange(60), new)]), torch.tensor(y[old | np.isin(np.arange(60), new)]))
    rest = np.flatnonzero(domains == "C-Y")[5:]
    before, _ = pool_predictions(model, torch.tensor(X[rest]))
    after, _ = pool_predictions(updated, torch.tensor(X[rest]))
    assert not np.allclose(before, after)
    assert all(a is b for a, b in zip(model.ensemble.members, updated.ensemble.members))  # same encoders


def test_fine_tune_moves_the_encoder_and_keeps_the_original(tiny):
    X, y, domains, ensemble = tiny
    inputs = DescriptorInputs(torch.tensor(X, dtype=torch.float32), [])
    keys = [frozenset([d]) for d in domains]
    new = np.flatnonzero(domains == "C-Y")[:5]
    before = [p.clone() for p in ensemble.members[0].encoder.parameters()]
    tuned = ensemble.fine_tune(inputs, y, keys, new, AdaptationConfig(finetune_steps=5))
    assert all(torch.equal(a, b) for a, b in zip(before, ensemble.members[0].encoder.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before, tuned.members[0].encoder.parameters()))


def test_novelty_is_zero_for_explored_and_grows_away_from_them():
    novelty = composition_novelty(["Pb-I", "Pb-F", "Ge-F", "Ge-Cl"], explored={"Pb-I", "Sn-Cl"})
    assert novelty[0] == 0 and 0 < novelty[1] < 1 and novelty[2] == 1 and 0 < novelty[3] < 1
    explored = torch.randn(50, 4)
    far = embedding_novelty(torch.stack([explored[0], explored[0] + 100]), explored)
    assert far[0] == 0 and far[1] > 10


def test_pooled_model_gives_the_same_posterior_as_the_encoders(tiny):
    X, y, _, ensemble = tiny
    model = E2TEnsembleModel(ensemble, torch.tensor(X[:40]), torch.tensor(y[:40]))
    pooled = model.on_pool(torch.tensor(X), chunk_size=7)
    index = torch.tensor([[3.0], [41.0], [59.0]])
    np.testing.assert_allclose(pooled.posterior(index).values.numpy(), model.posterior(torch.tensor(X[[3, 41, 59]])).values.numpy(),
                               rtol=1e-5, atol=1e-6)  # float32 encoders, chunked differently


def test_mean_imputation_fills_missing_descriptors_for_the_gp():
    from e2t_al.acquisition.models import fit_gp, mean_imputed

    X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0], [5.0, np.inf]])
    filled = mean_imputed(X)
    assert np.allclose(filled, [[1.0, 6.0], [3.0, 4.0], [3.0, 8.0], [5.0, 6.0]])
    fit_gp(torch.as_tensor(filled), torch.tensor([0.1, 0.2, 0.3, 0.4]), max_iterations=5)  # fits; NaN would raise
