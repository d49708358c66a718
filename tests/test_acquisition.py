"""Acquisition over a tiny E2T ensemble, checked by hand; batch rules; the GP baseline through the same interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.acquisition import qExpectedImprovement, qLogExpectedImprovement, qUpperConfidenceBound
from pydantic import ValidationError

from e2t_al.acquisition.batch import (Objective, build_acquisition, campaign_incumbent, pool_predictions,
                                      propose_batch, untested_scope_domains)
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
    incumbent = campaign_incumbent(model, torch.tensor(X), np.arange(60) < 40, y[:40], objective)
    acquisition = build_acquisition(model, config, objective, torch.tensor(X), incumbent)
    values = acquisition(torch.tensor(X[40:]).unsqueeze(1)).detach().numpy()
    members = model.posterior(torch.tensor(X[40:])).values[..., 0].numpy()  # (K, 20)
    np.testing.assert_allclose(values, -np.abs(members - target).mean(0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("function", ["qlogei", "qlognei", "qucb", "thompson", "exploit", "explore"])
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


def _fixed_gp(train_x: list[float], train_y: list[float]):
    """A GP with fixed hyper-parameters (RBF, length 1, noise 1e-4, zero prior mean)."""
    from botorch.models import SingleTaskGP

    gp = SingleTaskGP(torch.tensor([[x] for x in train_x], dtype=torch.float64),
                      torch.tensor([[y] for y in train_y], dtype=torch.float64), outcome_transform=None)
    gp.covar_module.lengthscale = 1.0
    gp.likelihood.noise = 1e-4
    gp.mean_module.constant.data.fill_(0.0)
    return gp.eval()


@pytest.mark.parametrize("function", ["qlogei", "qucb"])
def test_joint_batches_skip_a_near_copy_of_the_first_pick_and_marginal_batches_take_it(function):
    """A GP with fixed hyper-parameters (RBF, length 1, one measurement y = 1 at x = 3). Candidates at x = 4 and 4.01
    are the best by themselves (mean 0.61, sd 0.79) and almost perfectly correlated; those at 20 and 30 are
    independent priors (mean 0, sd 1). The joint rule values the near-copy by what it adds to the batch and takes a
    distant one instead; the marginal rule takes the next of the ranking, the near-copy."""
    gp = _fixed_gp([3.0], [1.0])
    pool = torch.tensor([[20.0], [4.0], [30.0], [4.01]], dtype=torch.float64)
    nothing = np.zeros(4, dtype=bool)
    joint = propose_batch(gp, pool, nothing, np.array([]), AcquisitionConfig(function=function, batch_size=2, batch_rule="joint"))
    marginal = propose_batch(gp, pool, nothing, np.array([]),
                             AcquisitionConfig(function=function, batch_size=2, batch_rule="marginal"))
    assert joint.indices[0] in (1, 3) and joint.indices[1] in (0, 2)
    assert sorted(marginal.indices.tolist()) == [1, 3]
    assert marginal.acquisition_values[1] == pytest.approx(marginal.acquisition_values[0], abs=0.05)


PLAIN_BELIEVER = {"batch_rule": "believer", "exploit_places": 0}  # no exploitation place (the default has one)


def test_believer_batches_value_each_pick_by_exact_expected_improvement_and_skip_near_copies():
    """The first place takes the candidate of highest analytic log EI, and its value is that log EI, exact far below
    the incumbent where the joint rule's quasi-MC draws all fall short and return qLogEI's smoothing tail. The GP then
    believes the pick, so its near-copy loses its value and a distant candidate is taken next. Minimising mirrors it."""
    from botorch.acquisition import LogExpectedImprovement

    # y = 2.5 at x = 3 and the incumbent 5 at x = 50: x = 4 and 4.01 (mean 1.52, sd 0.79) are the best candidates by
    # themselves, nearly perfectly correlated; x = 20 and 30 are the prior (mean 0, sd 1); all lie 4-5 sd below 5
    gp = _fixed_gp([3.0, 50.0], [2.5, 5.0])
    pool = torch.tensor([[20.0], [4.0], [30.0], [4.01], [50.0]], dtype=torch.float64)
    measured = np.array([False, False, False, False, True])
    log_ei = LogExpectedImprovement(gp, best_f=5.0)(pool.unsqueeze(1)).detach().numpy()
    believer = propose_batch(gp, pool, measured, np.array([5.0]), AcquisitionConfig(batch_size=2, **PLAIN_BELIEVER))
    assert believer.indices[0] == int(np.argmax(log_ei[:4]))
    assert believer.acquisition_values[0] == pytest.approx(log_ei[believer.indices[0]], rel=1e-6)
    assert believer.indices[0] in (1, 3) and believer.indices[1] in (0, 2)  # not the near-copy
    assert -40 < believer.acquisition_values[1] < believer.acquisition_values[0]
    joint = propose_batch(gp, pool, measured, np.array([5.0]), AcquisitionConfig(batch_size=1, batch_rule="joint"))
    assert joint.acquisition_values[0] < log_ei.max() - 5  # the tail, far below the true value

    flipped = _fixed_gp([3.0, 50.0], [-2.5, -5.0])
    low = propose_batch(flipped, pool, measured, np.array([-5.0]), AcquisitionConfig(batch_size=2, **PLAIN_BELIEVER),
                        objective=Objective("minimise"))
    assert low.indices.tolist() == believer.indices.tolist()
    np.testing.assert_allclose(low.acquisition_values, believer.acquisition_values, rtol=1e-6)

    pending = np.array([False, True, False, False, False])  # approved, not measured: believed before the first place
    after = propose_batch(gp, pool, measured, np.array([5.0]), AcquisitionConfig(batch_size=1, **PLAIN_BELIEVER),
                          pending=pending)
    assert after.indices[0] in (0, 2)


def test_exploit_places_take_the_highest_mean_once_the_scope_is_measured():
    """x = 3.05 lies next to the measurement y = 2.5 at x = 3: the highest mean (about 2.5) with a small deviation,
    so against the incumbent 5 its expected improvement is far below that of x = 4 (mean 1.52, sd 0.79). With one
    exploitation place the batch takes it first, valued by its own log EI, and believes it; expected improvement fills
    the next place. Before the scope has a measurement (here: the incumbent at x = 50 lies outside it), the rule is off."""
    from botorch.acquisition import LogExpectedImprovement

    gp = _fixed_gp([3.0, 50.0], [2.5, 5.0])
    pool = torch.tensor([[20.0], [4.0], [3.05], [50.0]], dtype=torch.float64)
    measured = np.array([False, False, False, True])
    log_ei = LogExpectedImprovement(gp, best_f=5.0)(pool.unsqueeze(1)).detach().numpy()
    assert int(np.argmax(log_ei[:3])) == 1
    plain = propose_batch(gp, pool, measured, np.array([5.0]), AcquisitionConfig(batch_size=2, **PLAIN_BELIEVER))
    exploit = AcquisitionConfig(batch_size=2, batch_rule="believer", exploit_places=1, exploit_rule="scope_measured")
    batch = propose_batch(gp, pool, measured, np.array([5.0]), exploit)
    assert plain.indices[0] == 1 and batch.indices[0] == 2
    assert plain.exploitation_places == 0 and batch.exploitation_places == 1
    assert batch.acquisition_values[0] == pytest.approx(log_ei[2], rel=1e-6)
    # the pick is believed: the next place is the believer's with x = 3.05 in flight
    believed = propose_batch(gp, pool, measured, np.array([5.0]), AcquisitionConfig(batch_size=1, **PLAIN_BELIEVER),
                             pending=np.array([False, False, True, False]))
    assert batch.indices[1] == believed.indices[0]
    assert batch.acquisition_values[1] == pytest.approx(believed.acquisition_values[0], rel=1e-6)
    unmeasured_scope = propose_batch(gp, pool, measured, np.array([5.0]), exploit,
                                     in_scope=np.array([True, True, True, False]))
    assert unmeasured_scope.indices[0] == 1
    # two places (the default of stop 43): believing a pick at its own mean leaves the other means as they were,
    # so the second place is the next highest mean, and expected improvement fills the third
    two_places = AcquisitionConfig(batch_size=3, batch_rule="believer", exploit_places=2, exploit_rule="scope_measured")
    two = propose_batch(gp, pool, measured, np.array([5.0]), two_places)
    mean = gp.posterior(pool).mean.squeeze(-1).detach().numpy()
    assert two.exploitation_places == 2 and two.chosen_by() == ["highest mean", "highest mean", "acquisition"]
    assert two.indices[0] == 2 and two.indices[1] == int(np.argmax(np.where([True, True, False, False], mean, -np.inf)))
    # "batch" (the default since stop 44): every place of a batch of any size by the highest mean, as a number of
    # places equal to the batch size (stop 44's 4 for the suite's batches of 4) does
    for size in (2, 3):
        whole = AcquisitionConfig(batch_size=size, batch_rule="believer", exploit_places="batch",
                                  exploit_rule="scope_measured")
        by_batch = propose_batch(gp, pool, measured, np.array([5.0]), whole)
        by_number = propose_batch(gp, pool, measured, np.array([5.0]), whole.model_copy(update={"exploit_places": size}))
        assert by_batch.chosen_by() == ["highest mean"] * size and by_batch.exploitation_places == size
        assert by_batch.indices.tolist() == by_number.indices.tolist() == np.argsort(-mean[:3]).tolist()[:size]


@pytest.mark.parametrize("priors, expected_first", [(10, 0), (250, 1)])
def test_exploit_places_when_improvement_is_unlikely(priors, expected_first):
    """``exploit_rule: improvement_unlikely``: exploitation only where the model expects fewer than one allowed
    candidate to beat the incumbent 2.6. x = 3.05 (mean about 2.5, small deviation) has the highest mean; x = 4 (mean
    1.52, sd 0.79) the highest expected improvement; each prior candidate far away (mean 0, sd 1) beats 2.6 with
    probability Φ(−2.6) = 0.0047. With 10 of them the expected count is below one and x = 3.05 is taken; with 250 it
    is above one, and expected improvement takes x = 4."""
    from scipy.stats import norm

    from e2t_al.acquisition.batch import Believer, Incumbent

    gp = _fixed_gp([3.0, 50.0], [2.5, 5.0])
    pool = torch.tensor([[3.05], [4.0]] + [[100.0 + 5 * k] for k in range(priors)] + [[50.0]], dtype=torch.float64)
    measured = np.zeros(len(pool), dtype=bool)
    measured[-1] = True
    config = AcquisitionConfig(batch_size=1, batch_rule="believer", exploit_places=1, exploit_rule="improvement_unlikely")
    batch = propose_batch(gp, pool, measured, np.array([2.6]), config)
    assert batch.indices[0] == expected_first
    assert batch.exploitation_places == (1 if expected_first == 0 else 0)
    default = AcquisitionConfig()
    assert (default.exploit_places, default.exploit_rule) == ("batch", "improvement_unlikely")
    assert AcquisitionConfig(batch_size=8).exploitation_places == 8  # every place, whatever the batch size
    for wrong in (-1, "all", 1.5):
        with pytest.raises(ValidationError, match="exploit_places"):
            AcquisitionConfig(exploit_places=wrong)
    mean, std = pool_predictions(gp, pool[:-1])
    believer = Believer(gp, pool, Objective(), Incumbent(2.6, np.array([len(pool) - 1]), "", True), np.array([]), 8192)
    count = believer.expected_count_above_incumbent(np.arange(len(pool) - 1))
    assert count == pytest.approx(norm.cdf((mean - 2.6) / std).sum(), rel=1e-9)
    assert (count < 1) == (expected_first == 0)


def test_believer_acts_as_the_joint_rule_without_a_gp_or_for_a_window(tiny):
    X, y, domains, ensemble = tiny
    measured = np.arange(60) < 35
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    for objective in (Objective(), Objective("target_window", 0.5, 0.7)):
        settings = dict(batch_size=3, posterior="members")
        joint = propose_batch(model, torch.tensor(X), measured, y[measured], AcquisitionConfig(**settings, batch_rule="joint"),
                              objective)
        believer = propose_batch(model, torch.tensor(X), measured, y[measured],
                                 AcquisitionConfig(**settings, batch_rule="believer"), objective)
        assert believer.indices.tolist() == joint.indices.tolist()


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


def test_an_untested_scope_domain_gets_one_place_once_the_scope_has_a_measurement(tiny):
    X, y, domains, ensemble = tiny
    in_scope = np.isin(domains, ["B-Y", "C-X", "C-Y"])
    measured = ~in_scope
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    def untested(measured, in_scope):  # propose_batch's unexplored mask: domains with no measurement anywhere
        return untested_scope_domains(domains, ~np.isin(domains, domains[measured]), measured, in_scope)

    assert untested(measured, in_scope) == set()  # batch 1: free to follow E2T's levels
    measured[np.flatnonzero(domains == "C-X")[0]] = True
    assert untested(measured, in_scope) == {"B-Y", "C-Y"}
    assert untested(measured, domains == "C-X") == set()  # a one-domain scope: never held
    own_a_x = np.flatnonzero(domains == "A-X")[:3]  # the lab's own A-X candidates, beside measured background A-X
    own, unmeasured_own = in_scope.copy(), measured.copy()
    own[own_a_x], unmeasured_own[own_a_x] = True, False
    assert untested(unmeasured_own, own) == {"B-Y", "C-Y"}  # A-X's level is known
    own_batch = propose_batch(model, torch.tensor(X), unmeasured_own, y[unmeasured_own],
                              AcquisitionConfig(function="explore", batch_size=4), domains=domains, in_scope=own)
    assert own_batch.untested_domains == ("B-Y", "C-Y")  # ... and propose_batch holds only those

    def batch(**settings):
        config = AcquisitionConfig(function="explore", batch_size=8, **settings)
        proposal = propose_batch(model, torch.tensor(X), measured, y[measured], config, domains=domains, in_scope=in_scope)
        assert proposal.untested_domains == (("B-Y", "C-Y") if config.max_per_unmeasured_domain else ())
        return domains[proposal.indices]

    free, capped = batch(max_per_unmeasured_domain=None), batch(max_per_unmeasured_domain=1)
    assert max((free == d).sum() for d in ("B-Y", "C-Y")) > 1  # without the rule the batch does take more
    assert (capped == "B-Y").sum() <= 1 and (capped == "C-Y").sum() <= 1 and len(capped) == 8
    measured[domains == "C-X"] = True  # only untested domains left: the batch is still filled
    assert len(batch(max_per_unmeasured_domain=1)) == 8


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


def test_a_gps_joint_posterior_over_the_pool_equals_the_gps_own(tiny):
    from e2t_al.acquisition.models import GaussianPoolModel

    X, y, _, _ = tiny
    measured = np.arange(60) < 35
    gp = fit_gp(torch.tensor(X[measured]), torch.tensor(y[measured]))
    rows = np.arange(30, 60)
    pooled = GaussianPoolModel.joint(gp, torch.tensor(X), rows)
    batches = [[40, 41, 33], [59, 30, 45]]  # 2 q-batches of 3 pool indices
    ours = pooled.posterior(torch.tensor(batches, dtype=torch.float64).unsqueeze(-1))
    theirs = gp.posterior(torch.tensor(X)[torch.tensor(batches)])
    np.testing.assert_allclose(ours.mean.detach().numpy(), theirs.mean.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.covariance_matrix.detach().numpy(), theirs.covariance_matrix.detach().numpy(),
                               rtol=1e-7, atol=1e-10)
    with pytest.raises(ValueError, match="outside the rows"):
        pooled.posterior(torch.tensor([[[3.0]]], dtype=torch.float64))


@pytest.mark.parametrize("settings,objective", [
    ({"function": "qlogei"}, Objective("target_window", 0.4, 0.9)),
    ({"function": "qlogei", "batch_rule": "joint"}, Objective()),
    ({"function": "qucb"}, Objective()),
    ({"function": "qlognei"}, Objective("minimise"))])
def test_gp_batches_through_the_joint_posterior_equal_the_gps_own(tiny, settings, objective):
    """The q-batch rules read a GP's joint posterior over the pool (computed once) by default; with
    joint_posterior_max_candidates 0 the GP computes each q-batch itself. Same batch, same values."""
    X, y, domains, _ = tiny
    measured = np.arange(60) < 35
    pending = np.zeros(60, dtype=bool)
    pending[[50, 51]] = True
    gp = fit_gp(torch.tensor(X[measured]), torch.tensor(y[measured]))
    batches = [propose_batch(gp, torch.tensor(X), measured, y[measured],
                             AcquisitionConfig(**settings, batch_size=4, joint_posterior_max_candidates=limit),
                             objective, pending=pending, domains=domains, in_scope=np.isin(domains, ["C-X", "C-Y"]))
               for limit in (0, 5000)]
    assert batches[0].indices.tolist() == batches[1].indices.tolist()
    np.testing.assert_allclose(batches[0].acquisition_values, batches[1].acquisition_values, rtol=1e-6, atol=1e-8)


def test_gp_batches_through_the_joint_posterior_take_near_copies_of_a_pick(tiny):
    """Candidates with identical descriptors (polymorphs of one composition) make the joint posterior of a pick and
    its copy singular: the batch is still chosen, as the GP's own path chooses it."""
    X, y, domains, _ = tiny
    X = np.vstack([X, X[40:50]])  # ten candidates twice
    measured = np.arange(70) < 35
    gp = fit_gp(torch.tensor(X[measured]), torch.tensor(y[:35]))
    batches = [propose_batch(gp, torch.tensor(X), measured, y[:35],
                             AcquisitionConfig(batch_size=6, joint_posterior_max_candidates=limit),
                             Objective("target_window", 0.4, 0.9)) for limit in (0, 5000)]
    assert batches[0].indices.tolist() == batches[1].indices.tolist()


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


def test_a_campaigns_interval_is_the_ensembles_calibrated_interval(tiny):
    """What a campaign with ``surrogate: e2t`` shows as ± σ (``E2TEnsembleModel.interval_std``) is the ensemble's
    own predictive standard deviation (``E2TEnsemble.predict``) for the same support set."""
    X, y, _, ensemble = tiny
    model = E2TEnsembleModel(ensemble, torch.tensor(X[:40]), torch.tensor(y[:40]))
    as_inputs = lambda rows: DescriptorInputs(torch.tensor(X[rows], dtype=torch.float32), [])  # noqa: E731
    _, expected = ensemble.predict(as_inputs(np.arange(60)), as_inputs(np.arange(40)), y[:40])
    np.testing.assert_allclose(model.interval_std(torch.tensor(X), chunk_size=7), expected, rtol=1e-4)
    assert all(m.validation_std_scale_ is not None for m in ensemble.members)


def test_mean_imputation_fills_missing_descriptors_for_the_gp():
    from e2t_al.acquisition.models import fit_gp, mean_imputed

    X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0], [5.0, np.inf]])
    filled = mean_imputed(X)
    assert np.allclose(filled, [[1.0, 6.0], [3.0, 4.0], [3.0, 8.0], [5.0, 6.0]])
    fit_gp(torch.as_tensor(filled), torch.tensor([0.1, 0.2, 0.3, 0.4]), max_iterations=5)  # fits; NaN would raise


# ---- the incumbent, the ensemble as a posterior, the E2T-informed GP --------------------------------------------
def test_background_above_the_scope_no_longer_flattens_the_acquisition(tiny):
    """Reference data far above the campaign's scope: against it no member improves (log-EI sits on its smoothing
    tail, tens of nats down); against the best measured in the scope, the acquisition values are meaningful."""
    X, y, domains, ensemble = tiny
    y = y.copy()
    scope = domains == "C-Y"
    y[domains == "A-X"] += 50.0  # background far above anything in the scope
    measured = ~scope
    measured[np.flatnonzero(scope)[:2]] = True  # two measurements in the scope
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    config = AcquisitionConfig(function="qlogei", batch_size=3)
    everywhere = propose_batch(model, torch.tensor(X), measured, y[measured], config)
    scoped = propose_batch(model, torch.tensor(X), measured, y[measured], config, in_scope=scope)
    assert everywhere.incumbent == pytest.approx(y[measured].max())
    assert scoped.incumbent == pytest.approx(y[measured & scope].max()) and "scope" in scoped.incumbent_rule
    assert everywhere.acquisition_values.max() < -20 < scoped.acquisition_values.min()


def test_incumbent_before_any_measurement_in_scope_is_the_best_predicted_mean(tiny):
    X, y, domains, ensemble = tiny
    scope = domains == "C-Y"
    model = E2TEnsembleModel(ensemble, torch.tensor(X[~scope]), torch.tensor(y[~scope]))
    mean, _ = pool_predictions(model, torch.tensor(X))
    incumbent = campaign_incumbent(model, torch.tensor(X), ~scope, y[~scope], Objective("maximise"), in_scope=scope)
    assert incumbent.best_f == pytest.approx(mean[scope].max()) and "predicted" in incumbent.rule
    assert scope[incumbent.baseline].all() and len(incumbent.baseline) == 1


def test_gaussian_posterior_has_the_members_moments_plus_the_error_floor(tiny):
    X, y, _, ensemble = tiny
    pooled = E2TEnsembleModel(ensemble, torch.tensor(X[:40]), torch.tensor(y[:40])).on_pool(torch.tensor(X))
    members = pooled.member_values.numpy()  # (K, n)
    gaussian = pooled.moment_matched(error_floor=0.3)
    index = torch.arange(60, dtype=torch.float64).reshape(-1, 1)
    posterior = gaussian.posterior(index)
    np.testing.assert_allclose(posterior.mean.reshape(-1).numpy(), members.mean(0), rtol=1e-10)
    np.testing.assert_allclose(posterior.variance.reshape(-1).numpy(), ((members - members.mean(0)) ** 2).mean(0) + 0.3,
                               rtol=1e-10)
    # log-EI with many quasi-MC draws is the log of the closed-form Gaussian EI, σ φ(z) + (μ − f*) Φ(z)
    from botorch.sampling import SobolQMCNormalSampler
    from scipy.stats import norm

    best_f = float(np.median(members))
    log_ei = qLogExpectedImprovement(gaussian, best_f=best_f, sampler=SobolQMCNormalSampler(torch.Size([4096]), seed=0))
    values = log_ei(index.unsqueeze(1)).detach().numpy()
    mu, sigma = members.mean(0), np.sqrt(members.var(0) + 0.3)
    z = (mu - best_f) / sigma
    np.testing.assert_allclose(values, np.log(sigma * norm.pdf(z) + (mu - best_f) * norm.cdf(z)), atol=0.03)


def test_thompson_draws_follow_the_gaussian_marginals(tiny):
    from e2t_al.acquisition.batch import ThompsonDraws
    from e2t_al.acquisition.models import GaussianPoolModel

    mean = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    model = GaussianPoolModel(mean, torch.tensor([1.0, 0.04, 4.0], dtype=torch.float64))
    draws = ThompsonDraws(model, torch.arange(3, dtype=torch.float64).unsqueeze(-1), Objective("maximise"), 100, seed=0)
    np.testing.assert_allclose(draws.mean, mean.numpy())
    np.testing.assert_allclose(draws.std, [1.0, 0.2, 2.0], rtol=1e-10)
    # P(choose i) by Monte Carlo against the draws' own frequencies
    rng = np.random.default_rng(1)
    sims = draws.mean + draws.std * rng.standard_normal((20000, 3))
    expected = np.bincount(sims.argmax(1), minlength=3) / 20000
    chosen = np.bincount([draws.best_of_one_draw(np.arange(3))[0] for _ in range(4000)], minlength=3) / 4000
    np.testing.assert_allclose(chosen, expected, atol=0.03)


def test_e2t_gp_with_no_residual_data_equals_the_e2t_mean(tiny):
    """Measured values equal to E2T's (own-domain-held-out) prediction leave no residual: the GP's posterior mean is
    the E2T mean everywhere, including the unmeasured domain."""
    from e2t_al.acquisition.e2t_gp import fit_e2t_gp, pool_inputs

    X, y, domains, ensemble = tiny
    measured = domains != "C-Y"
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    prior = model.own_domain_held_out_mean(X, np.flatnonzero(measured), domains)
    gp = fit_e2t_gp(pool_inputs(X, domains), prior, np.flatnonzero(measured), prior[measured].numpy(), max_iterations=20)
    mean, _ = pool_predictions(gp, pool_inputs(X, domains))
    np.testing.assert_allclose(mean, prior.numpy(), atol=1e-3)


def test_e2t_gp_prior_mean_leaves_each_candidates_own_domain_out(tiny):
    X, y, domains, ensemble = tiny
    measured = domains != "C-Y"
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    prior = model.own_domain_held_out_mean(X, np.flatnonzero(measured), domains).numpy()
    ax = domains == "A-X"
    rest = measured & ~ax
    by_hand = E2TEnsembleModel(ensemble, torch.tensor(X[rest]), torch.tensor(y[rest]))
    expected, _ = pool_predictions(by_hand, torch.tensor(X[ax]))
    np.testing.assert_allclose(prior[ax], expected, rtol=1e-4, atol=1e-5)
    unmeasured, _ = pool_predictions(model, torch.tensor(X[~measured]))  # a domain with no measurement: all of S
    np.testing.assert_allclose(prior[~measured], unmeasured, rtol=1e-4, atol=1e-5)


def test_e2t_gp_learns_a_domain_like_a_gp(tiny):
    """Measurements in the new domain move the E2T-informed GP there: its error on the domain's other candidates
    falls below the E2T prior's."""
    from e2t_al.acquisition.e2t_gp import fit_e2t_gp, pool_inputs

    X, y, domains, ensemble = tiny
    y = y.copy()
    new = np.flatnonzero(domains == "C-Y")
    y[new] += 3.0  # a level E2T cannot know from the other domains
    measured = domains != "C-Y"
    measured[new[:4]] = True
    model = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
    prior = model.own_domain_held_out_mean(X, np.flatnonzero(measured), domains)
    gp = fit_e2t_gp(pool_inputs(X, domains), prior, np.flatnonzero(measured), y[measured])
    mean, _ = pool_predictions(gp, pool_inputs(X, domains))
    rest = new[4:]
    assert np.abs(mean[rest] - y[rest]).mean() < 0.5 * np.abs(prior.numpy()[rest] - y[rest]).mean()


def test_e2t_gp_prior_by_evidence_keeps_the_levels_until_the_scope_is_measured_then_takes_the_likelier(tiny):
    """``by_evidence``: the domain levels while the scope has no measurement; then the levels where the measurements
    follow them, a flat prior mean where they are flat, and between refits the last fit's choice."""
    from e2t_al.acquisition.e2t_gp import domain_level
    from e2t_al.acquisition.surrogates import e2t_surrogate

    X, y, domains, ensemble = tiny
    config = AcquisitionConfig(e2t_gp_prior="by_evidence", gp_refit_every=3)
    scope = domains == "C-Y"
    measured = ~scope
    levels = domain_level(E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured]))
                          .own_domain_held_out_mean(X, np.flatnonzero(measured), domains), domains).numpy()
    assert np.ptp(levels) > 0.3  # the domains' levels differ, so the two priors differ
    unmeasured = e2t_surrogate(config, ensemble, X, measured, y[measured], domains, in_scope=scope)
    assert unmeasured.prior == "domain_level"
    plain = e2t_surrogate(AcquisitionConfig(), ensemble, X, measured, y[measured], domains, in_scope=scope)
    np.testing.assert_allclose(pool_predictions(unmeasured.model, unmeasured.pool_X)[0],
                               pool_predictions(plain.model, plain.pool_X)[0])

    measured[np.flatnonzero(scope)[:3]] = True
    rng = np.random.default_rng(1)
    trend = 0.5 * X[:, 0] + 0.02 * rng.normal(size=len(X))
    follows_levels, flat_values = levels + trend, 1.0 + trend
    chosen = {name: e2t_surrogate(config, ensemble, X, measured, values[measured], domains, in_scope=scope)
              for name, values in (("follows the levels", follows_levels), ("flat", flat_values))}
    assert chosen["follows the levels"].prior == "domain_level"
    assert chosen["flat"].prior == "flat"
    kept = e2t_surrogate(config, ensemble, X, measured, follows_levels[measured], domains, batch_number=1,
                         previous=chosen["flat"].model, in_scope=scope)  # no refit at batch 1: conditioned only
    assert kept.prior == "flat"


def test_window_objectives_refit_the_gp_every_batch_and_the_others_every_gp_refit_every(tiny):
    """In a simulated campaign the E2T-informed GP keeps the last fit's hyper-parameters between refits (conditioned
    on the new data only); a target window refits them every ``window_gp_refit_every`` batches (1), a maximisation
    every ``gp_refit_every`` (3)."""
    from e2t_al.acquisition.surrogates import e2t_surrogate

    X, y, domains, ensemble = tiny
    config = AcquisitionConfig()
    assert (config.refit_every("maximise"), config.refit_every("minimise"), config.refit_every("target_window")) == (3, 3, 1)
    assert AcquisitionConfig(window_gp_refit_every=None).refit_every("target_window") == 3
    scope = domains == "C-Y"
    measured = ~scope
    first = e2t_surrogate(config, ensemble, X, measured, y[measured], domains, in_scope=scope)

    def hyper_parameters(model) -> torch.Tensor:
        return torch.cat([value.detach().flatten() for _, value in sorted(model.named_parameters())])

    fitted = hyper_parameters(first.model)
    measured[np.flatnonzero(scope)[:3]] = True
    y_new = y + 2.0 * scope  # the scope lies higher than its prior said: a refit moves the hyper-parameters
    after = {kind: e2t_surrogate(config, ensemble, X, measured, y_new[measured], domains, batch_number=1,
                                 previous=first.model, in_scope=scope, objective_kind=kind)
             for kind in ("maximise", "target_window")}
    assert torch.equal(hyper_parameters(after["maximise"].model), fitted)
    assert not torch.allclose(hyper_parameters(after["target_window"].model), fitted)


def test_e2t_gp_scope_trend_learns_a_scope_that_runs_against_the_background(tiny):
    """``e2t_gp_scope_trend``: no extra term while the scope is unmeasured (the default's posterior); with five scope
    measurements, a scope whose trend runs against the measured domains' gets a large s_T² and is predicted from
    its own measurements, one that follows them a small s_T²; the term only couples two scope candidates."""
    from e2t_al.acquisition.e2t_gp import ScopeTrendKernel, has_scope_trend, scope_trend_scales
    from e2t_al.acquisition.surrogates import e2t_surrogate
    from gpytorch.kernels import RBFKernel

    X, y, domains, ensemble = tiny
    config = AcquisitionConfig(e2t_gp_scope_trend=True)
    scope = domains == "C-Y"
    measured = ~scope
    unmeasured = e2t_surrogate(config, ensemble, X, measured, y[measured], domains, in_scope=scope)
    plain = e2t_surrogate(AcquisitionConfig(), ensemble, X, measured, y[measured], domains, in_scope=scope)
    assert not has_scope_trend(unmeasured.model)
    np.testing.assert_allclose(pool_predictions(unmeasured.model, unmeasured.pool_X)[0],
                               pool_predictions(plain.model, plain.pool_X)[0])

    measured[np.flatnonzero(scope)[:5]] = True
    rest = np.flatnonzero(scope)[5:]
    against = np.where(scope, -X[:, 0] + 0.5 * X[:, 1] + 1.5, y)
    fitted, error = {}, {}
    for name, values, acquisition in (("follows", y, config), ("against", against, config),
                                      ("against, default", against, AcquisitionConfig())):
        surrogate = e2t_surrogate(acquisition, ensemble, X, measured, values[measured], domains, in_scope=scope)
        fitted[name] = surrogate.model
        error[name] = np.abs(pool_predictions(surrogate.model, surrogate.pool_X)[0][rest] - values[rest]).mean()
    scale = {name: scope_trend_scales(fitted[name])[1] for name in ("follows", "against")}
    assert scale["against"] > 10 * scale["follows"]
    assert error["against"] < 0.25 * error["against, default"]
    kept = e2t_surrogate(config, ensemble, X, measured, y[measured], domains, batch_number=1,
                         previous=plain.model, in_scope=scope)  # no refit due at batch 1, but the term is new: fitted
    assert has_scope_trend(kept.model)

    descriptor_kernel = RBFKernel(active_dims=[0])
    kernel = ScopeTrendKernel(descriptor_kernel, torch.tensor([1.0, 0.0, 1.0]))
    rows = torch.tensor([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]])  # (descriptor, pool index)
    by_hand = descriptor_kernel(rows).to_dense() * torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 0, 1]])
    torch.testing.assert_close(kernel(rows).to_dense(), by_hand)
    assert len(list(kernel.parameters())) == 0  # the descriptor kernel's length scales belong to the shared term


def prior_in_target_units(gp) -> torch.Tensor:
    """An E2T-informed GP's prior mean table ``(n,)`` back in target units (it is stored standardised)."""
    return gp.mean_module.table * gp.outcome_transform.stdvs.reshape(()) + gp.outcome_transform.means.reshape(())


def test_within_domain_slope_and_the_shrunk_order_prior(tiny):
    """The members' within-domain slope is Σ d̂ d / Σ d̂² pooled over held-out domains (small ones skipped); the
    ``shrunk_order`` prior is each domain's level plus that slope times E2T's deviation from it, in the surrogate."""
    from e2t_al.acquisition.e2t_gp import domain_level, shrunk_order
    from e2t_al.acquisition.surrogates import e2t_surrogate
    from e2t_al.model.e2t import within_domain_slope

    keys = [frozenset({"A", "X"})] * 5 + [frozenset({"B", "X"})] * 5 + [frozenset({"C", "X"})] * 2
    actual = np.array([0, 1, 2, 3, 4, 10, 10, 11, 9, 10, 50, -50], dtype=float)
    predicted = np.concatenate([2 * actual[:5] + 7, [1, 1, 3, -1, 1], [0, 1]])  # A-X: twice the spread; C-X: too few
    by_hand = (np.sum((2 * actual[:5] - 4) * (actual[:5] - 2)) + np.sum([0, 0, 2, -2, 0] * (actual[5:10] - 10))) / \
        (np.sum((2 * actual[:5] - 4) ** 2) + 8)
    assert within_domain_slope(predicted, actual, keys) == pytest.approx(by_hand)
    assert within_domain_slope(np.ones(12), actual, keys) is None  # no predicted spread
    values, labels = torch.tensor([1.0, 3.0, 10.0, 20.0]), np.array(["a", "a", "b", "b"])
    np.testing.assert_allclose(shrunk_order(values, labels, 0.0).numpy(), domain_level(values, labels).numpy())
    np.testing.assert_allclose(shrunk_order(values, labels, 1.0).numpy(), values.numpy())
    np.testing.assert_allclose(shrunk_order(values, labels, 0.25).numpy(), [1.75, 2.25, 13.75, 16.25])

    X, y, domains, ensemble = tiny
    slopes = [m.validation_within_slope_ for m in ensemble.members]
    assert all(b is not None for b in slopes)  # one held-out domain of 10 each
    assert ensemble.within_domain_slope() == pytest.approx(np.clip(np.mean(slopes), 0, 1))
    measured = domains != "C-Y"
    config = AcquisitionConfig(e2t_gp_prior="shrunk_order")
    surrogate = e2t_surrogate(config, ensemble, X, measured, y[measured], domains)
    candidate = E2TEnsembleModel(ensemble, torch.tensor(X[measured]), torch.tensor(y[measured])) \
        .own_domain_held_out_mean(X, np.flatnonzero(measured), domains)
    expected = shrunk_order(candidate, domains, ensemble.within_domain_slope() or 0.0)
    table = prior_in_target_units(surrogate.model)
    assert surrogate.prior == "shrunk_order"
    np.testing.assert_allclose(table.detach().numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_e2t_gp_kernel_reads_the_members_embeddings_or_the_descriptors(tiny):
    """``e2t_gp_kernel_inputs: embeddings``: the GP's kernel columns are each member's embedding standardised over the
    pool and concatenated (by hand); the prior mean and the rows it is fitted on are those of the descriptor GP, whose
    kernel columns are the descriptors themselves."""
    from e2t_al.acquisition.surrogates import e2t_surrogate

    X, y, domains, ensemble = tiny
    measured = domains != "C-Y"
    scope = domains == "C-Y"
    measured[np.flatnonzero(scope)[:2]] = True
    inputs = DescriptorInputs(torch.tensor(X, dtype=torch.float32), [])
    by_hand = torch.cat([(z - z.mean(0)) / (z.std(0) + 1e-6) for z in (m.embed(inputs) for m in ensemble.members)], 1)
    surrogates = {kind: e2t_surrogate(AcquisitionConfig(e2t_gp_kernel_inputs=kind, gp_max_background=20), ensemble, X,
                                      measured, y[measured], domains, in_scope=scope)
                  for kind in ("descriptors", "embeddings")}
    embedded, plain = surrogates["embeddings"], surrogates["descriptors"]
    assert embedded.pool_X.shape == (60, 3 * 8 + 2)
    np.testing.assert_allclose(embedded.pool_X[:, :-2].numpy(), by_hand.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plain.pool_X[:, :-2].numpy(), X)
    np.testing.assert_array_equal(embedded.pool_X[:, -2:].numpy(), plain.pool_X[:, -2:].numpy())
    rows = [gp.model.train_inputs[0][:, -1].round().long().sort().values for gp in (embedded, plain)]
    assert len(rows[0]) == 22 and torch.equal(rows[0], rows[1])  # the scope's 2 and the 20 nearest in descriptors
    tables = [prior_in_target_units(gp.model) for gp in (embedded, plain)]
    np.testing.assert_allclose(tables[0].detach().numpy(), tables[1].detach().numpy())
    mean, _ = pool_predictions(embedded.model, embedded.pool_X)
    assert np.isfinite(mean).all() and not np.allclose(mean, pool_predictions(plain.model, plain.pool_X)[0])


def test_domain_level_and_the_scope_level_kernel(tiny):
    """The domain level is each domain's mean; the scope-level term adds its variance u² to every candidate of the
    scope's domains and nothing elsewhere, and correlates a scope domain's candidates with each other only."""
    from e2t_al.acquisition.e2t_gp import ScopeLevelKernel, domain_level, fit_e2t_gp, pool_inputs

    X, y, domains, ensemble = tiny
    level = domain_level(torch.arange(6, dtype=torch.float64), np.array(["a", "b", "a", "b", "b", "c"]))
    np.testing.assert_allclose(level.numpy(), [1.0, 8 / 3, 1.0, 8 / 3, 8 / 3, 5.0])
    scope = domains == "C-Y"
    measured = ~scope
    inputs = pool_inputs(X, domains)
    prior = torch.as_tensor(y, dtype=torch.float64)
    plain = fit_e2t_gp(inputs, prior, np.flatnonzero(measured), y[measured], max_iterations=10)
    with_level = fit_e2t_gp(inputs, prior, np.flatnonzero(measured), y[measured], warm_start=plain, refit=False,
                            level_std=torch.as_tensor(np.where(scope, 0.5, 0.0)))
    _, std_plain = pool_predictions(plain, inputs)
    _, std_level = pool_predictions(with_level, inputs)
    np.testing.assert_allclose(std_level[scope] ** 2 - std_plain[scope] ** 2, 0.25, rtol=1e-3)
    np.testing.assert_allclose(std_level[~scope], std_plain[~scope], rtol=1e-6)
    kernel = ScopeLevelKernel(torch.tensor([0.0, 2.0, 3.0]))
    pairs = torch.tensor([[7.0, 0.0], [7.0, 1.0], [7.0, 2.0], [8.0, 2.0]])  # (domain number, pool index)
    assert kernel(pairs).to_dense().tolist() == [[0, 0, 0, 0], [0, 4, 6, 0], [0, 6, 9, 0], [0, 0, 0, 9]]


def test_e2t_gp_without_a_learned_offset_falls_back_to_the_e2t_level_far_from_the_data(tiny):
    """With the offset fixed at 0, candidates far from every measured material (descriptors shifted by 50) get E2T's
    prior mean; a learned offset stays a fitted number, whatever it is."""
    from e2t_al.acquisition.e2t_gp import fit_e2t_gp, pool_inputs

    X, y, domains, ensemble = tiny
    far = domains == "C-Y"
    X = X.copy()
    X[far] += 50.0
    measured = ~far
    prior = torch.as_tensor(y + 0.3, dtype=torch.float64)  # E2T's level, biased: the residuals have mean −0.3
    inputs = pool_inputs(X, domains)
    fixed = fit_e2t_gp(inputs, prior, np.flatnonzero(measured), y[measured], max_iterations=30, learn_offset=False)
    assert fixed.mean_module.constant.item() == 0.0
    mean, _ = pool_predictions(fixed, inputs)
    np.testing.assert_allclose(mean[far], prior.numpy()[far], atol=0.05)
    learned = fit_e2t_gp(inputs, prior, np.flatnonzero(measured), y[measured], max_iterations=30)
    assert learned.mean_module.constant.item() != 0.0


def _levels_only(gp):
    """An E2T-informed GP with its descriptor term switched off (s² ~ 0), s_D² = 1 and noise 0.01: candidates of
    one domain share a level and nothing else."""
    descriptor_term, domain_term = gp.covar_module.kernels
    descriptor_term.outputscale = torch.tensor(1e-8)
    domain_term.outputscale = torch.tensor(1.0)
    gp.likelihood.noise = torch.tensor(1e-2)
    gp.train()
    return gp.eval()


def test_believer_keeping_domain_levels_believes_a_pick_without_its_domains_shared_level(tiny):
    """``believer_keeps_domain_level``: with only the same-domain term left (descriptor term ~0), believing one
    candidate of the unexplored domain leaves its domain-mates' uncertainty as it was; the plain believer shrinks it
    (the believed level is shared). A plain GP has no domain levels, so the option leaves it alone."""
    from e2t_al.acquisition.batch import Believer, Incumbent
    from e2t_al.acquisition.e2t_gp import fit_e2t_gp, has_domain_levels, pool_inputs

    X, y, domains, ensemble = tiny
    new = np.flatnonzero(domains == "C-Y")
    measured = domains != "C-Y"
    inputs = pool_inputs(X, domains)
    gp = _levels_only(fit_e2t_gp(inputs, torch.zeros(len(X), dtype=torch.float64), np.flatnonzero(measured),
                                 y[measured], max_iterations=5))
    assert has_domain_levels(gp)
    _, before = pool_predictions(gp, inputs[new[1:]])
    incumbent = Incumbent(float(y.max()), np.array([0]), "")
    after = {}
    for keeps in (False, True):
        believer = Believer(gp, inputs, Objective(), incumbent, np.array([], dtype=int), 8192, keeps_domain_level=keeps)
        believer.believe(torch.tensor([int(new[0])]))
        _, after[keeps] = pool_predictions(believer.model, inputs[new[1:]])
    np.testing.assert_allclose(after[True], before, rtol=1e-4)
    assert (after[False] < 0.5 * before).all()
    plain = fit_gp(torch.tensor(X[measured]), torch.tensor(y[measured]), max_iterations=5)
    assert not has_domain_levels(plain)


@pytest.mark.parametrize("keeps", [False, True])
def test_a_joint_window_batch_keeping_domain_levels_stops_hedging_an_untested_domains_level(tiny, keeps):
    """``joint_keeps_domain_level``: two untested domains, only the same-domain term left (descriptor term ~0), a
    window around C-Y's mean, B-Y's mean 0.5 below it. Without the option the joint rule hedges C-Y's shared level:
    after one C-Y pick another is worth almost nothing (the same level), so the batch goes to B-Y. With it, each pick
    in flight stands in a domain of its own, with C-Y's exact mean and variance, so the batch takes C-Y's likelier
    hits."""
    from e2t_al.acquisition.batch import propose_batch
    from e2t_al.acquisition.e2t_gp import fit_e2t_gp, pool_inputs

    X, y, domains, _ = tiny
    untested = np.isin(domains, ["B-Y", "C-Y"])
    inputs = pool_inputs(X, domains)
    prior = torch.as_tensor(np.where(domains == "B-Y", -0.5, 0.0), dtype=torch.float64)
    gp = _levels_only(fit_e2t_gp(inputs, prior, np.flatnonzero(~untested), y[~untested], max_iterations=5,
                                 learn_offset=False))
    mean, std = pool_predictions(gp, inputs)
    centre = float(mean[domains == "C-Y"][0])
    assert np.ptp(mean[domains == "C-Y"]) < 1e-4 and float(mean[domains == "B-Y"][0]) < centre - 0.1
    objective = Objective("target_window", centre - 0.3 * std[untested].min(), centre + 0.3 * std[untested].min())
    config = AcquisitionConfig(batch_size=4, batch_rule="joint", joint_keeps_domain_level=keeps,
                               max_per_unmeasured_domain=None)
    proposal = propose_batch(gp, inputs, ~untested, y[~untested], config, objective, domains=domains,
                             in_scope=untested)
    picked = domains[proposal.indices].tolist()
    assert picked[0] == "C-Y"
    if keeps:
        assert picked.count("C-Y") >= 3
    else:
        assert picked[1] == "B-Y"


def test_hit_probability_fills_a_window_batch_with_the_likeliest_hits():
    """window_rule hit_probability: each place's value is log P(low ≤ y ≤ high) under the GP's marginals, checked
    against Φ by hand, and the batch is the top of that ranking among the allowed candidates."""
    from scipy.stats import norm

    gp = _fixed_gp([0.0, 0.3, 1.0], [0.2, 1.4, 3.0])
    pool = torch.linspace(-1.0, 2.0, 31, dtype=torch.float64).unsqueeze(-1)
    measured = np.zeros(31, dtype=bool)
    measured[[10, 13, 20]] = True  # x = 0.0, 0.3, 1.0 (1.4 is a hit)
    pending = np.zeros(31, dtype=bool)
    pending[14] = True
    objective = Objective("target_window", 1.2, 1.6)
    config = AcquisitionConfig(batch_size=3, window_rule="hit_probability")
    batch = propose_batch(gp, pool, measured, np.array([0.2, 1.4, 3.0]), config, objective, pending=pending)
    mean, std = pool_predictions(gp, pool)
    by_hand = norm.cdf((1.6 - mean) / std) - norm.cdf((1.2 - mean) / std)
    allowed = np.flatnonzero(~measured & ~pending)
    assert batch.indices.tolist() == allowed[np.argsort(-by_hand[allowed])[:3]].tolist()
    np.testing.assert_allclose(np.exp(batch.acquisition_values), by_hand[batch.indices], rtol=1e-9)
    assert batch.incumbent_rule.startswith("not used: each place by its probability of a hit in [1.2, 1.6]")
