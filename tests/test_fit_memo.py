"""Remembered GP fits: a reused fit is exactly the fit, and only an identical fit is reused."""

from __future__ import annotations

import botorch.fit
import numpy as np
import torch

from e2t_al.acquisition import fit_memo
from e2t_al.acquisition.batch import Objective
from e2t_al.acquisition.fit_memo import GPFitMemo
from e2t_al.acquisition.models import fit_gp


def small_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(30, 3))
    y = np.sin(4 * X[:, 0]) + 0.5 * X[:, 1] + 0.05 * rng.normal(size=30)
    return torch.tensor(X), torch.tensor(y), torch.tensor(rng.uniform(size=(10, 3)))


def posterior_mean_std(model, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        posterior = model.posterior(X)
    return posterior.mean, posterior.variance.sqrt()


def test_a_reused_fit_equals_a_fresh_fit_and_other_data_is_fitted_anew():
    X, y, query = small_problem()
    memo = GPFitMemo()
    fresh = fit_gp(X, y, max_iterations=30)
    first = fit_gp(X, y, max_iterations=30, memo=memo)
    again = fit_gp(X, y, max_iterations=30, memo=memo)
    assert memo.summary() == {"fitted": 1, "reused": 1}
    for a, b in zip(posterior_mean_std(fresh, query), posterior_mean_std(again, query)):
        assert torch.equal(a, b)
    fitted, reused = first.state_dict(), again.state_dict()
    assert fitted.keys() == reused.keys() and all(torch.equal(fitted[k], reused[k]) for k in fitted)

    fit_gp(X, y + 1e-3, max_iterations=30, memo=memo)  # other targets
    fit_gp(X, y, max_iterations=31, memo=memo)  # other options
    fit_gp(X, y, max_iterations=30, memo=memo, warm_start=fit_gp(X[:20], y[:20], max_iterations=5))  # other start
    assert memo.summary() == {"fitted": 4, "reused": 1}


def test_a_fit_that_draws_random_numbers_is_not_remembered(monkeypatch):
    real_fit = fit_memo.fit_gpytorch_mll

    def fit_with_a_random_restart(mll, **options):  # what BoTorch does when its first attempt fails
        torch.rand(1)
        return real_fit(mll, **options)

    monkeypatch.setattr(fit_memo, "fit_gpytorch_mll", fit_with_a_random_restart)
    X, y, _ = small_problem()
    memo = GPFitMemo()
    fit_gp(X, y, max_iterations=10, memo=memo)
    fit_gp(X, y, max_iterations=10, memo=memo)
    assert memo.summary() == {"fitted": 2, "reused": 0}


def test_baybe_with_a_memo_recommends_what_it_recommends_without_one_and_botorch_is_restored():
    from e2t_al.bench.baybe_baseline import BayBEProposer

    rng = np.random.default_rng(1)
    features = rng.uniform(size=(40, 3))
    values = 3.0 * features[:, 0] - features[:, 1] ** 2
    measured = np.zeros(40, dtype=bool)
    measured[rng.choice(40, size=15, replace=False)] = True
    original = botorch.fit.fit_gpytorch_mll
    plain = BayBEProposer(features, Objective("maximise")).propose(measured, values[measured], batch=3, seed=2)
    memo = GPFitMemo()
    remembered = BayBEProposer(features, Objective("maximise"), fit_memo=memo)
    first = remembered.propose(measured, values[measured], batch=3, seed=2)
    second = remembered.propose(measured, values[measured], batch=3, seed=2)
    assert memo.summary() == {"fitted": 1, "reused": 1}  # BayBE's GP went through the memo
    assert plain.tolist() == first.tolist() == second.tolist()
    assert botorch.fit.fit_gpytorch_mll is original
