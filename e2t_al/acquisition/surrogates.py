"""The model that scores a campaign's pool, as the acquisition config names it (``surrogate``): one builder for
the campaign loop and the discovery benchmark.

- ``e2t``: the E2T ensemble with every measurement as its support set, its members' predictions over the pool
  computed once (``PooledEnsembleModel``; the acquisition searches over pool indices).
- ``e2t_gp``: the E2T-informed GP (``e2t_al.acquisition.e2t_gp``) on the mean-imputed descriptors, or on the members'
  embeddings (``e2t_gp_kernel_inputs``). Its prior mean (``e2t_gp_prior``) is E2T's domain levels, E2T's per-candidate
  prediction, the levels plus E2T's order inside each domain shrunk by the slope its members measured on their
  validation domains (``shrunk_order``), or, ``by_evidence``, whichever of the domain levels and a flat prior mean the
  fitted marginal likelihood prefers once the scope has a measurement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from gpytorch.mlls import ExactMarginalLogLikelihood

from e2t_al.acquisition.e2t_gp import (domain_level, fit_e2t_gp, has_scope_trend, pool_inputs, scope_trend_scales,
                                       shrunk_order)
from e2t_al.acquisition.fit_memo import GPFitMemo
from e2t_al.acquisition.models import GP_FIT_ITERATIONS, E2TEnsembleModel, mean_imputed
from e2t_al.config import AcquisitionConfig
from e2t_al.model.ensemble import E2TEnsemble

GP_REFIT_ITERATIONS = 20  # L-BFGS steps of a warm-started refit
log = logging.getLogger(__name__)


@dataclass
class PoolSurrogate:
    """A BoTorch model over the pool and its inputs: ``pool_X (n, ·)`` rows in candidate order; ``ensemble_model``:
    the E2T ensemble with the measurements as support set (its embeddings serve novelty)."""

    model: Model
    pool_X: torch.Tensor
    ensemble_model: E2TEnsembleModel
    prior: str = "ensemble"  # the e2t_gp's prior mean: "domain_level", "candidate", "shrunk_order" or "flat"


def gp_schedule(batch_number: int, refit_every: int, previous: SingleTaskGP | None) -> tuple[int, bool]:
    """(L-BFGS steps, refit?) for a GP surrogate at ``batch_number`` (0, 1, …): a full fit the first time, then
    warm-started refits every ``refit_every`` batches, and in between only conditioning on the new data."""
    if previous is None:
        return GP_FIT_ITERATIONS, True
    return GP_REFIT_ITERATIONS, batch_number % refit_every == 0


def e2t_surrogate(config: AcquisitionConfig, ensemble: E2TEnsemble, features: np.ndarray, measured: np.ndarray,
                  measured_y: np.ndarray, domains: np.ndarray, batch_number: int = 0,
                  previous: SingleTaskGP | None = None, memo: GPFitMemo | None = None,
                  in_scope: np.ndarray | None = None, objective_kind: str = "maximise") -> PoolSurrogate:
    """The configured E2T surrogate over ``features (n, d)``, given the measured rows ``measured (n,)`` and their
    values ``measured_y``. ``previous``: the last batch's ``e2t_gp`` (warm start, or kept hyper-parameters).
    ``in_scope (n,)``: the campaign's scope (for ``e2t_gp_scope_level``, ``e2t_gp_scope_trend`` and ``by_evidence``;
    without one, ``by_evidence`` keeps the domain levels and there is no scope trend). ``objective_kind``: sets how
    often ``previous``'s hyper-parameters are refitted (``AcquisitionConfig.refit_every``)."""
    measured = np.asarray(measured, dtype=bool)
    model = E2TEnsembleModel(ensemble, torch.as_tensor(features[measured]), torch.as_tensor(measured_y))
    if config.surrogate == "e2t":
        pooled = model.on_pool(torch.as_tensor(features), config.chunk_size)
        return PoolSurrogate(pooled, torch.arange(len(features), dtype=torch.float64).unsqueeze(-1), model)
    prior_mean = model.own_domain_held_out_mean(features, np.flatnonzero(measured), domains)
    prior = config.e2t_gp_prior if config.e2t_gp_prior in ("candidate", "shrunk_order") else "domain_level"
    if prior == "domain_level":
        prior_mean = domain_level(prior_mean, domains)
    elif prior == "shrunk_order":
        slope = ensemble.within_domain_slope()
        if previous is None:
            log.info("e2t_gp prior mean: E2T's domain levels plus %.3f of its order inside each domain (the members' "
                     "within-domain slope on their validation domains%s)", slope or 0.0,
                     "" if slope is not None else ": none measured, so the levels alone")
        prior_mean = shrunk_order(prior_mean, domains, slope or 0.0)
    descriptors = mean_imputed(features)
    kernel_inputs = descriptors if config.e2t_gp_kernel_inputs == "descriptors" else model.embed(features).numpy()
    pool_X = pool_inputs(kernel_inputs, domains)
    steps, refit = gp_schedule(batch_number, config.refit_every(objective_kind), previous)
    scope_measured = in_scope is not None and bool((measured & in_scope).any())
    scope_trend = None
    if config.e2t_gp_scope_trend and scope_measured:
        # the scope's own trend, learned from its measurements: fitted as soon as there is one, then kept
        scope_trend = np.asarray(in_scope, dtype=bool)
        refit = refit or not has_scope_trend(previous)
    level_std = None
    if config.e2t_gp_scope_level and in_scope is not None:
        level_std = torch.as_tensor(np.where(in_scope, np.sqrt(ensemble.error_floor()), 0.0))
    values = np.full(len(features), np.nan)
    values[measured] = measured_y
    train = gp_training_rows(descriptors, measured, in_scope, config.gp_max_background)
    priors = {prior: prior_mean}
    if config.e2t_gp_prior == "by_evidence" and scope_measured:
        # the training values' mean, which the GP's outcome standardisation maps to 0: a plain constant mean c
        flat = torch.full_like(prior_mean, float(np.mean(values[train])))
        if refit:  # compared when the hyper-parameters are fitted
            priors["flat"] = flat
        elif has_flat_prior(previous):  # in between, the last fit's choice is conditioned on
            priors = {"flat": flat}
    fits = {name: fit_e2t_gp(pool_X, table, train, values[train], max_iterations=steps, warm_start=previous,
                             memo=memo, refit=refit, level_std=level_std, learn_offset=config.e2t_gp_learn_offset,
                             scope_trend=scope_trend)
            for name, table in priors.items()}
    if len(fits) > 1:
        evidence = {name: fitted_log_likelihood(gp) for name, gp in fits.items()}
        prior = max(evidence, key=evidence.get)
        log.info("e2t_gp prior mean by evidence: %s (marginal log likelihood per row: %s)", prior,
                 ", ".join(f"{name} {value:.4f}" for name, value in evidence.items()))
    else:
        prior = next(iter(fits))
    if scope_trend is not None and refit:
        shared, own = scope_trend_scales(fits[prior])
        log.info("e2t_gp scope trend: s² %.4f, s_T² %.4f, background-scope correlation %.3f", shared, own,
                 (shared / (shared + own)) ** 0.5)
    return PoolSurrogate(fits[prior], pool_X, model, prior)


def has_flat_prior(gp: SingleTaskGP | None) -> bool:
    """Whether an E2T-informed GP's prior mean table is one constant (the ``flat`` prior of ``by_evidence``)."""
    table = getattr(getattr(gp, "mean_module", None), "table", None)
    return table is not None and bool(torch.all(table == table[0]))


def fitted_log_likelihood(gp: SingleTaskGP) -> float:
    """The exact marginal log likelihood of a fitted GP's training data per training row (with its hyper-parameters'
    log prior, as the fit maximised it)."""
    gp.train()
    try:
        with torch.no_grad():
            return float(ExactMarginalLogLikelihood(gp.likelihood, gp)(gp(*gp.train_inputs), gp.train_targets))
    finally:
        gp.eval()


def gp_training_rows(descriptors: np.ndarray, measured: np.ndarray, in_scope: np.ndarray | None,
                     max_background: int | None) -> np.ndarray:
    """The measured rows a GP surrogate is fitted on: every measured row in the scope, and of the measured rows
    outside it (background, prior knowledge) at most ``max_background``, those nearest to the scope's rows in
    standardised descriptor space. An exact GP costs O(n³) per step (3,163 rows: about 4 minutes a fit on 2 cores),
    and background far from every candidate hardly moves the posterior at the candidates."""
    train = np.flatnonzero(measured)
    if in_scope is None or max_background is None:
        return train
    in_scope = np.asarray(in_scope, dtype=bool)
    background = train[~in_scope[train]]
    if len(background) <= max_background or not in_scope.any():
        return train
    X = torch.as_tensor(descriptors, dtype=torch.float64)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-12)
    scope = X[torch.as_tensor(np.flatnonzero(in_scope))]
    nearest = torch.cat([torch.cdist(X[torch.as_tensor(chunk)], scope).min(dim=1).values
                         for chunk in np.array_split(background, max(1, len(background) // 1024))])
    keep = background[np.argsort(nearest.numpy(), kind="stable")[:max_background]]
    return np.sort(np.concatenate([train[in_scope[train]], keep]))
