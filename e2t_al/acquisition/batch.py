"""Batch selection over a discrete candidate pool with BoTorch acquisition functions.

The batch is built greedily, one candidate at a time, each time with BoTorch's ``optimize_acqf_discrete`` over
the candidates still allowed, and with the approved-but-unmeasured candidates and those chosen so far as
``X_pending`` (sequential greedy q-batch selection). Measured candidates are never proposed; domain rules
(at most ``max_per_domain`` per element domain, ``reserve_unexplored`` places for unmeasured domains) decide
which candidates are allowed at each step. Pools are scored in chunks of ``chunk_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import (AcquisitionFunction, qLogExpectedImprovement, qLogNoisyExpectedImprovement,
                                 qSimpleRegret, qUpperConfidenceBound)
from botorch.acquisition.monte_carlo import qPosteriorStandardDeviation
from botorch.models.model import Model
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler

from e2t_al.acquisition.models import E2TEnsembleModel, EnsembleMemberSampler, PooledEnsembleModel
from e2t_al.acquisition.objectives import botorch_objective, score
from e2t_al.config import AcquisitionConfig


@dataclass(frozen=True)
class Objective:
    kind: str = "maximise"  # maximise | minimise | target_window
    low: float | None = None
    high: float | None = None

    def score(self, values: np.ndarray) -> np.ndarray:
        return score(values, self.kind, self.low, self.high)


@dataclass
class BatchProposal:
    """``indices (q,)`` into the pool in the order chosen, and each one's acquisition value when chosen."""

    indices: np.ndarray
    acquisition_values: np.ndarray


def sampler_for(model: Model, mc_samples: int, seed: int = 0):
    if isinstance(model, (E2TEnsembleModel, PooledEnsembleModel)):
        return EnsembleMemberSampler(model.ensemble_size)
    return SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)


def build_acquisition(model: Model, config: AcquisitionConfig, objective: Objective, measured_X: torch.Tensor,
                      measured_y: np.ndarray, X_pending: torch.Tensor | None = None) -> AcquisitionFunction:
    """The configured BoTorch acquisition function: qlogei, qlognei, qucb, exploit (posterior mean of the
    objective, ``qSimpleRegret``) or explore (posterior standard deviation)."""
    sampler = sampler_for(model, config.mc_samples)
    mc_objective = botorch_objective(objective.kind, objective.low, objective.high)
    common = {"sampler": sampler, "objective": mc_objective, "X_pending": X_pending}
    if config.function == "qlogei":
        best_f = float(objective.score(measured_y).max()) if len(measured_y) else 0.0
        return qLogExpectedImprovement(model, best_f=best_f, **common)
    if config.function == "qlognei":
        return qLogNoisyExpectedImprovement(model, X_baseline=measured_X, prune_baseline=True, cache_root=False, **common)
    if config.function == "qucb":
        return qUpperConfidenceBound(model, beta=config.ucb_beta, **common)
    if config.function == "exploit":
        return qSimpleRegret(model, **common)
    if config.function == "explore":
        return qPosteriorStandardDeviation(model, sampler=sampler, X_pending=X_pending)
    raise ValueError(f"unknown acquisition function {config.function!r}")


def propose_batch(model: Model, pool_X: torch.Tensor, measured: np.ndarray, measured_y: np.ndarray,
                  config: AcquisitionConfig, objective: Objective = Objective(), pending: np.ndarray | None = None,
                  domains: np.ndarray | None = None, explored_domains: set[str] | None = None) -> BatchProposal:
    """Choose ``config.batch_size`` pool indices.

    Args:
        pool_X: features of every candidate, ``(n, d)``.
        measured: boolean ``(n,)``, candidates with a measurement (never proposed; the acquisition's data).
        measured_y: their values (objective units before scoring), ``(measured.sum(),)``.
        pending: boolean ``(n,)``, approved but not yet measured (not proposed again; ``X_pending``).
        domains: element domain label per candidate ``(n,)``; needed for the domain rules.
        explored_domains: domains counted as explored (default: those of measured candidates).
    """
    n = len(pool_X)
    pool_X = torch.as_tensor(pool_X, dtype=torch.float64)
    if isinstance(model, E2TEnsembleModel):  # members predict each candidate once; the search runs over indices
        model = model.on_pool(pool_X, config.chunk_size)
        pool_X = torch.arange(n, dtype=torch.float64).unsqueeze(-1)
    measured = np.asarray(measured, dtype=bool)
    pending = np.zeros(n, dtype=bool) if pending is None else np.asarray(pending, dtype=bool)
    allowed = ~measured & ~pending
    if domains is None and (config.max_per_domain or config.reserve_unexplored):
        raise ValueError("domain rules need each candidate's domain")
    if domains is not None:
        domains = np.asarray(domains)
        explored = explored_domains if explored_domains is not None else set(domains[measured].tolist())
        unexplored = ~np.isin(domains, list(explored))
    chosen, values = [], []
    per_domain: dict[str, int] = {}
    for step in range(config.batch_size):
        candidates = allowed.copy()
        if domains is not None:
            if step < config.reserve_unexplored and (candidates & unexplored).any():
                candidates &= unexplored
            if config.max_per_domain:
                full = [d for d, count in per_domain.items() if count >= config.max_per_domain]
                candidates &= ~np.isin(domains, full)
        choices = np.flatnonzero(candidates)
        if len(choices) == 0:
            break
        X_pending = pool_X[np.flatnonzero(pending).tolist() + chosen] if (pending.any() or chosen) else None
        acquisition = build_acquisition(model, config, objective, pool_X[measured], measured_y, X_pending)
        with torch.no_grad():
            best_X, best_value = optimize_acqf_discrete(acquisition, q=1, choices=pool_X[choices],
                                                        max_batch_size=config.chunk_size, unique=True)
        match = choices[(pool_X[choices] == best_X[0]).all(dim=1).numpy()]
        index = int(match[0])
        chosen.append(index)
        values.append(float(best_value.reshape(-1)[0]))
        allowed[index] = False
        if domains is not None:
            per_domain[str(domains[index])] = per_domain.get(str(domains[index]), 0) + 1
    return BatchProposal(np.array(chosen, dtype=int), np.array(values))


def pool_predictions(model: Model, pool_X: torch.Tensor, chunk_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of every candidate, ``(n,)`` each, scored in chunks."""
    pool_X = torch.as_tensor(pool_X, dtype=torch.float64)
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(pool_X), chunk_size):
            posterior = model.posterior(pool_X[i:i + chunk_size])
            means.append(posterior.mean.reshape(-1))
            stds.append(posterior.variance.clamp_min(0).sqrt().reshape(-1))
    return torch.cat(means).numpy(), torch.cat(stds).numpy()
