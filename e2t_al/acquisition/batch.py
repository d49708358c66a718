"""Batch selection over a discrete candidate pool with BoTorch acquisition functions.

The batch is built greedily, one candidate at a time, each time with BoTorch's ``optimize_acqf_discrete`` over
the candidates still allowed. Measured candidates are never proposed; domain rules (at most ``max_per_domain`` per
element domain, ``reserve_unexplored`` places for unmeasured domains, and, once the campaign's scope has a
measurement, at most ``max_per_unmeasured_domain`` per scope domain that has none while other candidates are left:
``untested_scope_domains``) decide which candidates are allowed at each step. Pools are scored in chunks of
``chunk_size``.

``batch_rule: joint`` passes the approved-but-unmeasured candidates and those chosen so far as ``X_pending``
(sequential greedy q-batch selection: a place is worth what it adds to the batch's joint improvement, so candidates
correlated with earlier picks lose value). ``batch_rule: marginal`` passes only the approved-but-unmeasured ones:
each place takes the next candidate by its own (q = 1) value, the top of the ranking. Why both: with a level shared
by a whole element domain (``e2t_gp``), the joint rule spreads a batch over domains even when one domain is clearly
ahead, and skips that domain's second- and third-ranked candidates. On the discovery suite's development seeds the
marginal rule was no better on the pooled fluorides and worse on the pooled germanium domains (batches to the best
7, 6, 2, 6 against 5, 3, 3, 3), so ``marginal`` is not the default.

With a GP surrogate, these rules read the GP's joint posterior over the batch's candidates, computed once per batch
(``GaussianPoolModel.joint``, up to ``joint_posterior_max_candidates``): the same values as asking the GP for each
candidate's q-batch, without recomputing every candidate's covariance with the training data at every place.

``batch_rule: believer`` (GP surrogates: ``e2t_gp``, ``gp``; maximise or minimise) fills each place by BoTorch's
analytic ``LogExpectedImprovement`` of one candidate, then conditions the GP on that candidate with its posterior mean
as if it had been measured (the "kriging believer" of Ginsbourger et al. 2010) before the next place; approved but
unmeasured candidates are believed first. Candidates correlated with an earlier pick lose their uncertainty and so
their value, as in the joint rule, but every value is exact. The joint rule's quasi-MC estimate (``mc_samples``
draws) is not: for a candidate whose draws all stay below the incumbent, qLogEI returns the smoothing tail (about
−44 for a 0.4 eV standard deviation, whatever its true expected improvement), so in a campaign whose model expects
nothing above the lab's best, a batch was ordered by that tail and the acquisition column showed −44 beside −8 for
two candidates of nearly equal value. With any other model or objective, ``believer`` acts as ``joint``. It is the
default (``AcquisitionConfig.batch_rule``, where the evidence is). With an E2T-informed GP a believed pick leaves
its element domain's shared level as uncertain as before (``believer_keeps_domain_level``, the default since stop
39; ``Believer``), so a batch can still take a domain's second- and third-ranked candidates after its first.
``exploit_places: n`` gives the believer's first n places of each batch, once the campaign's scope has a
measurement, to the candidates of highest posterior mean (each believed like any pick); expected improvement fills
the rest. The default, ``batch``, is every place (since stop 44; 2 at stop 43, 1 before). With ``exploit_rule:
improvement_unlikely`` (the default) only in batches where the model expects fewer than one allowed candidate to
beat the incumbent.

A target window, once reached: qLogEI values −distance to the window, which cannot exceed 0, so once a measurement in
the scope lies inside the window every value is qLogEI's smoothing tail. That tail still ranks candidates by how
close their posterior samples come to the window, and it found more in-window materials on the suite's window
scenario (development seeds) than the probability of landing inside, P(low ≤ y ≤ high), whether taken per candidate
(E2T-GP 26 hits in 40 against 28) or jointly for the batch (21): it stays. The per-candidate probability is kept as
``window_rule: hit_probability`` (``HitProbability``): tried again at stop 38 with the current default model, it tied
on the development seeds, found fewer on the fresh seeds and far fewer on a check window (docs/benchmarks.md, "Windows
by the probability of a hit").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import (AcquisitionFunction, LogExpectedImprovement, qLogExpectedImprovement,
                                 qLogNoisyExpectedImprovement, qSimpleRegret, qUpperConfidenceBound)
from botorch.acquisition.monte_carlo import qPosteriorStandardDeviation
from botorch.acquisition.objective import ScalarizedPosteriorTransform
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.model import Model
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler
from scipy.stats import norm

from e2t_al.acquisition import CHOSEN_BY
from e2t_al.acquisition.e2t_gp import has_domain_levels, in_domains_of_their_own
from e2t_al.acquisition.models import E2TEnsembleModel, EnsembleMemberSampler, GaussianPoolModel, PooledEnsembleModel
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
    """``indices (q,)`` into the pool in the order chosen, and each one's acquisition value when chosen;
    the incumbent the improvement was measured against (objective units) and the rule that set it; how many of the
    first places went to the highest posterior mean (``exploit_places``) rather than to the acquisition function;
    the scope's domains without a measurement, held to ``max_per_unmeasured_domain`` places (sorted)."""

    indices: np.ndarray
    acquisition_values: np.ndarray
    incumbent: float | None = None
    incumbent_rule: str = ""
    exploitation_places: int = 0
    untested_domains: tuple[str, ...] = ()

    def chosen_by(self) -> list[str]:
        """What chose each place, in order: ``"highest mean"`` for an exploitation place, else ``"acquisition"``."""
        return [CHOSEN_BY[0] if place < self.exploitation_places else CHOSEN_BY[1] for place in range(len(self.indices))]


@dataclass(frozen=True)
class Incumbent:
    """What an improvement is measured against: ``best_f`` (objective units, higher is better) for qLogEI, and
    ``baseline`` pool rows ``(m,)`` for qLogNEI. ``rule`` says which rule set them, for the batch's log."""

    best_f: float
    baseline: np.ndarray
    rule: str
    scope_measured: bool = False


def campaign_incumbent(model: Model, pool_X: torch.Tensor, measured: np.ndarray, measured_y: np.ndarray,
                       objective: Objective, in_scope: np.ndarray | None = None) -> Incumbent:
    """The best measured value **within the campaign's scope** (its unexplored domains, or its own candidates).

    Reference data from other domains is background knowledge, not something to improve on: if it counted, a
    campaign whose background holds higher values than its scope would have zero expected improvement everywhere.
    Before the scope has a measurement, the incumbent is the best posterior mean (as objective) in the scope: an
    improvement is then an improvement on what the model already expects there. ``in_scope (n,)``: None is the
    whole pool; ``measured_y`` holds the values of ``measured`` rows in pool order."""
    measured = np.asarray(measured, dtype=bool)
    in_scope = np.ones(len(measured), dtype=bool) if in_scope is None else np.asarray(in_scope, dtype=bool)
    scored = objective.score(np.asarray(measured_y, dtype=float))
    scope_measured = in_scope[measured]
    if scope_measured.any():
        return Incumbent(float(scored[scope_measured].max()), np.flatnonzero(measured & in_scope),
                         f"best measured in the campaign's scope ({int(scope_measured.sum())} measurements)",
                         scope_measured=True)
    rows = np.flatnonzero(in_scope) if in_scope.any() else np.arange(len(measured))
    mean, _ = pool_predictions(model, pool_X[rows])
    best = int(np.argmax(objective.score(mean)))
    return Incumbent(float(objective.score(mean[best:best + 1])[0]), rows[best:best + 1],
                     "no measurement in the campaign's scope yet: the best predicted mean in the scope")


def sampler_for(model: Model, mc_samples: int, seed: int = 0):
    if isinstance(model, (E2TEnsembleModel, PooledEnsembleModel)):
        return EnsembleMemberSampler(model.ensemble_size)
    return SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)


def build_acquisition(model: Model, config: AcquisitionConfig, objective: Objective, pool_X: torch.Tensor,
                      incumbent: Incumbent, X_pending: torch.Tensor | None = None) -> AcquisitionFunction:
    """The configured BoTorch acquisition function: qlogei (against ``incumbent.best_f``), qlognei (baseline
    ``pool_X[incumbent.baseline]``), qucb, exploit (posterior mean of the objective, ``qSimpleRegret``) or explore
    (posterior standard deviation)."""
    sampler = sampler_for(model, config.mc_samples)
    mc_objective = botorch_objective(objective.kind, objective.low, objective.high)
    common = {"sampler": sampler, "objective": mc_objective, "X_pending": X_pending}
    if config.function == "qlogei":
        return qLogExpectedImprovement(model, best_f=incumbent.best_f, **common)
    if config.function == "qlognei":
        return qLogNoisyExpectedImprovement(model, X_baseline=pool_X[incumbent.baseline], prune_baseline=True,
                                            cache_root=False, **common)
    if config.function == "qucb":
        return qUpperConfidenceBound(model, beta=config.ucb_beta, **common)
    if config.function == "exploit":
        return qSimpleRegret(model, **common)
    if config.function == "explore":
        return qPosteriorStandardDeviation(model, sampler=sampler, X_pending=X_pending)
    raise ValueError(f"unknown acquisition function {config.function!r}")


def propose_batch(model: Model, pool_X: torch.Tensor, measured: np.ndarray, measured_y: np.ndarray,
                  config: AcquisitionConfig, objective: Objective = Objective(), pending: np.ndarray | None = None,
                  domains: np.ndarray | None = None, explored_domains: set[str] | None = None,
                  in_scope: np.ndarray | None = None, excluded: np.ndarray | None = None, error_floor: float = 0.0,
                  seed: int = 0) -> BatchProposal:
    """Choose ``config.batch_size`` pool indices.

    Args:
        pool_X: features of every candidate, ``(n, d)``.
        measured: boolean ``(n,)``, candidates with a measurement (never proposed; the acquisition's data).
        measured_y: their values (objective units before scoring), ``(measured.sum(),)``.
        pending: boolean ``(n,)``, approved but not yet measured (not proposed again; ``X_pending``).
        domains: element domain label per candidate ``(n,)``; needed for the domain rules.
        explored_domains: domains counted as explored (default: those of measured candidates).
        in_scope: boolean ``(n,)``, the campaign's scope, where the incumbent is taken (``campaign_incumbent``).
        excluded: boolean ``(n,)``, never proposed (retired candidates).
        error_floor: an E2T ensemble's error floor (variance), added by ``posterior: gaussian`` and Thompson.
        seed: Thompson sampling's draws.
    """
    n = len(pool_X)
    pool_X = torch.as_tensor(pool_X, dtype=torch.float64)
    if isinstance(model, E2TEnsembleModel):  # members predict each candidate once; the search runs over indices
        model = model.on_pool(pool_X, config.chunk_size)
        pool_X = torch.arange(n, dtype=torch.float64).unsqueeze(-1)
    if isinstance(model, PooledEnsembleModel) and (config.posterior == "gaussian" or config.function == "thompson"):
        model = model.moment_matched(error_floor)
    measured = np.asarray(measured, dtype=bool)
    pending = np.zeros(n, dtype=bool) if pending is None else np.asarray(pending, dtype=bool)
    allowed = ~measured & ~pending
    if excluded is not None:
        allowed &= ~np.asarray(excluded, dtype=bool)
    if domains is None and (config.max_per_domain or config.reserve_unexplored):
        raise ValueError("domain rules need each candidate's domain")
    untested: set[str] = set()  # the scope's domains held to max_per_unmeasured_domain places (none without domains)
    if domains is not None:
        domains = np.asarray(domains)
        labels = domains.astype(str)  # each candidate's domain as the domain rules count it (``per_domain``'s keys)
        explored = explored_domains if explored_domains is not None else set(domains[measured].tolist())
        unexplored = ~np.isin(domains, list(explored))
        if config.max_per_unmeasured_domain:
            untested = untested_scope_domains(labels, unexplored, measured, in_scope)
    incumbent = campaign_incumbent(model, pool_X, measured, measured_y, objective, in_scope)
    thompson = ThompsonDraws(model, pool_X, objective, config.chunk_size, seed) if config.function == "thompson" else None
    hits = (HitProbability(model, pool_X, objective, config.chunk_size)
            if uses_hit_probability(config, objective) and thompson is None else None)
    believer = (Believer(model, pool_X, objective, incumbent, np.flatnonzero(pending), config.chunk_size,
                         keeps_domain_level=config.believer_keeps_domain_level and has_domain_levels(model))
                if uses_believer(model, config, objective) else None)
    exploit = believer is not None and incumbent.scope_measured and config.exploitation_places > 0
    if exploit and config.exploit_rule == "improvement_unlikely":
        exploit = believer.expected_count_above_incumbent(np.flatnonzero(allowed)) < 1.0
    q_batch = thompson is None and hits is None and believer is None  # the joint or marginal q-batch rule
    in_flight_row = np.arange(n)  # the pool_X row that stands for each candidate while it is in flight
    if (q_batch and config.joint_keeps_domain_level and domains is not None and has_domain_levels(model)
            and (untested_in_flight := np.flatnonzero(unexplored & (allowed | pending))).size):
        # an in-flight pick of an untested domain joins the batch as a copy in a domain of its own: the same mean and
        # variance (nothing measured there moves its level), no shared level with its domain-mates
        in_flight_row[untested_in_flight] = n + np.arange(len(untested_in_flight))
        pool_X = torch.cat([pool_X, in_domains_of_their_own(pool_X[untested_in_flight])])
    if (q_batch and isinstance(model, GPyTorchModel)
            and 0 < (allowed | pending).sum() <= config.joint_posterior_max_candidates):
        # the q-batch acquisition reads the GP's joint posterior over the candidates, computed once for the batch
        rows = np.union1d(np.flatnonzero(allowed | pending), incumbent.baseline)
        rows = np.concatenate([rows, np.arange(n, len(pool_X))])  # and the in-flight copies, if any
        model = GaussianPoolModel.joint(model, pool_X, rows)
        pool_X = torch.arange(len(pool_X), dtype=torch.float64).unsqueeze(-1)
    chosen, values = [], []
    per_domain: dict[str, int] = {}
    for step in range(config.batch_size):
        candidates = allowed.copy()
        if domains is not None:
            if step < config.reserve_unexplored and (candidates & unexplored).any():
                candidates &= unexplored
            if config.max_per_domain:
                full = [d for d, count in per_domain.items() if count >= config.max_per_domain]
                candidates &= ~np.isin(labels, full)
            if untested:  # a preference: where only capped domains are left, the batch is still filled
                full = [d for d in untested if per_domain.get(d, 0) >= config.max_per_unmeasured_domain]
                held = np.isin(labels, full)
                if (candidates & ~held).any():
                    candidates &= ~held
        choices = np.flatnonzero(candidates)
        if len(choices) == 0:
            break
        if thompson is not None:
            index, value = thompson.best_of_one_draw(choices)
        elif hits is not None:
            index, value = hits.most_likely_hit(choices)
        elif believer is not None:
            index, value = believer.best_and_believe(choices, exploit=exploit and step < config.exploitation_places)
        else:
            in_flight = np.flatnonzero(pending).tolist() + (chosen if config.batch_rule != "marginal" else [])
            X_pending = pool_X[in_flight_row[in_flight]] if in_flight else None
            acquisition = build_acquisition(model, config, objective, pool_X, incumbent, X_pending)
            with torch.no_grad():
                best_X, best_value = optimize_acqf_discrete(acquisition, q=1, choices=pool_X[choices],
                                                            max_batch_size=config.chunk_size, unique=True)
            index = int(choices[(pool_X[choices] == best_X[0]).all(dim=1).numpy()][0])
            value = float(best_value.reshape(-1)[0])
        chosen.append(index)
        values.append(value)
        allowed[index] = False
        if domains is not None:
            per_domain[labels[index]] = per_domain.get(labels[index], 0) + 1
    exploited = min(config.exploitation_places, len(chosen)) if exploit else 0
    rule = incumbent.rule if hits is None else (f"not used: each place by its probability of a hit in "
                                                f"[{objective.low:g}, {objective.high:g}] (values are log P)")
    return BatchProposal(np.array(chosen, dtype=int), np.array(values), incumbent.best_f, rule, exploited,
                         tuple(sorted(untested)))


def untested_scope_domains(domains: np.ndarray, unexplored: np.ndarray, measured: np.ndarray,
                           in_scope: np.ndarray | None) -> set[str]:
    """The campaign scope's element domains among the ``unexplored`` candidates (``propose_batch``'s mask: domains
    with no measurement in the scope or the background, unless ``explored_domains`` says otherwise, so a scope domain
    whose level the background data already show is never held), once the scope has a measurement (before that:
    none, so the first batch is free to follow E2T's levels). All arguments ``(n,)``; no scope is the whole pool."""
    labels = np.asarray(domains).astype(str)
    in_scope = np.ones(len(labels), dtype=bool) if in_scope is None else np.asarray(in_scope, dtype=bool)
    if not (measured & in_scope).any():
        return set()
    return set(labels[in_scope & np.asarray(unexplored, dtype=bool)].tolist())


def uses_believer(model: Model, config: AcquisitionConfig, objective: Objective) -> bool:
    """``batch_rule: believer`` applies: a GP surrogate, expected improvement, a maximise or minimise objective."""
    return (config.batch_rule == "believer" and config.function == "qlogei" and isinstance(model, GPyTorchModel)
            and objective.kind in ("maximise", "minimise"))


class Believer:
    """The kriging believer over a discrete pool (``batch_rule: believer``, see the module docstring): each place
    takes the allowed candidate of highest analytic log expected improvement over ``incumbent.best_f`` (objective
    units), log EI(x) = log(σ(x) h((μ(x) − f*)/σ(x))), h(z) = φ(z) + zΦ(z), under the GP conditioned on every
    earlier pick (and on the ``pending (p,)`` rows first) at its own posterior mean.

    ``keeps_domain_level`` (an E2T-informed GP, ``pool_inputs``): each believed row is conditioned on with a domain
    number of its own (``in_domains_of_their_own``), so under the same-domain term s_D² 1[D(x) = D(x')] it shares
    no level with any candidate. A believed pick then takes uncertainty from its descriptor neighbours only; its
    domain's level stays as uncertain as the real measurements leave it."""

    def __init__(self, model: GPyTorchModel, pool_X: torch.Tensor, objective: Objective, incumbent: Incumbent,
                 pending: np.ndarray, chunk_size: int, keeps_domain_level: bool = False):
        self.pool_X, self.chunk_size = pool_X, chunk_size
        self.keeps_domain_level = keeps_domain_level
        self.best_f = incumbent.best_f
        self.sign = -1.0 if objective.kind == "minimise" else 1.0  # the incumbent is in objective units: −y when minimising
        self.transform = ScalarizedPosteriorTransform(weights=torch.tensor([self.sign], dtype=torch.float64))
        self.model = model
        if len(pending):
            self.believe(torch.as_tensor(np.asarray(pending)))

    def believe(self, rows: torch.Tensor) -> None:
        """Condition the GP on pool ``rows`` at its posterior mean there (its posterior variance shrinks, mean stays)."""
        X = self.pool_X[rows]
        with torch.no_grad():
            believed = self.model.posterior(X).mean  # (r, 1); also fills the caches that conditioning needs
            if self.keeps_domain_level:
                X = in_domains_of_their_own(X)
            self.model = self.model.condition_on_observations(X, believed)

    def expected_count_above_incumbent(self, choices: np.ndarray) -> float:
        """Σ_x P(y(x) > f*) over ``choices``: how many of them the model expects to beat the incumbent."""
        mean, std = pool_predictions(self.model, self.pool_X[torch.as_tensor(choices)], self.chunk_size)
        return float(norm.cdf((self.sign * mean - self.best_f) / np.maximum(std, 1e-12)).sum())

    def best_and_believe(self, choices: np.ndarray, exploit: bool = False) -> tuple[int, float]:
        """The allowed candidate of highest log EI (``exploit``: of highest posterior mean of the objective, valued
        by its log EI all the same), believed before the next place: ``(pool index, log EI)``."""
        acquisition = LogExpectedImprovement(self.model, best_f=self.best_f, posterior_transform=self.transform)
        X = self.pool_X[torch.as_tensor(choices)].unsqueeze(-2)  # (c, 1, d)
        with torch.no_grad():
            if exploit:  # the pool is scored once, by its mean; log EI only where the place went
                mean, _ = pool_predictions(self.model, X[:, 0], self.chunk_size)
                best = int(np.argmax(self.sign * mean))
                value = acquisition(X[best:best + 1])[0]
            else:
                values = torch.cat([acquisition(X[i:i + self.chunk_size]) for i in range(0, len(X), self.chunk_size)])
                best = int(torch.argmax(values))
                value = values[best]
        self.believe(torch.as_tensor([choices[best]]))
        return int(choices[best]), float(value)


def uses_hit_probability(config: AcquisitionConfig, objective: Objective) -> bool:
    """``window_rule: hit_probability`` applies: a target window of positive width."""
    return (config.window_rule == "hit_probability" and objective.kind == "target_window"
            and objective.high is not None and objective.low is not None and objective.high > objective.low)


class HitProbability:
    """A target window's places by the probability of a hit (``window_rule: hit_probability``): each place takes
    the allowed candidate of highest log P(low ≤ y ≤ high) = log(Φ((high − μ)/σ) − Φ((low − μ)/σ)) under the
    posterior's marginals N(μ_i, σ²_i), which is its acquisition value. A batch's expected number of hits is the sum
    of its places' probabilities, so the top q of this ranking maximise it (marginals suffice: correlations change a
    batch's spread of hits, not their expectation). Greedy by P(hit), it does not explore: off by default
    (docs/benchmarks.md, "Windows by the probability of a hit")."""

    def __init__(self, model: Model, pool_X: torch.Tensor, objective: Objective, chunk_size: int):
        mean, std = pool_predictions(model, pool_X, chunk_size)
        std = np.maximum(std, 1e-12)
        upper, lower = (objective.high - mean) / std, (objective.low - mean) / std
        # log(Φ(b) − Φ(a)) = log T + log(1 − t/T), T the tail mass from the window's far edge on and t the part of it
        # beyond the window: the survival functions when the mean lies below the window, Φ otherwise, so two tiny
        # tail masses are never taken from one another as 1 − tiny
        below = mean < objective.low
        tail = np.where(below, norm.logsf(lower), norm.logcdf(upper))
        beyond = np.where(below, norm.logsf(upper), norm.logcdf(lower))
        self.log_probability = tail + np.log(-np.expm1(np.minimum(beyond - tail, -1e-300)))  # t = T: P ≈ 0, finite

    def most_likely_hit(self, choices: np.ndarray) -> tuple[int, float]:
        best = int(np.argmax(self.log_probability[choices]))
        return int(choices[best]), float(self.log_probability[choices][best])


class ThompsonDraws:
    """Thompson sampling over a discrete pool: each batch slot takes one draw f̃ ~ N(μ_i, σ²_i), independently per
    candidate from the posterior's marginals, and chooses the allowed candidate with the best objective of f̃. Its
    acquisition value is that objective value. Marginals, not the joint posterior: a pool of thousands would need an
    n × n covariance per draw, and a batch is already spread by taking a fresh draw per slot."""

    def __init__(self, model: Model, pool_X: torch.Tensor, objective: Objective, chunk_size: int, seed: int):
        self.mean, self.std = pool_predictions(model, pool_X, chunk_size)
        self.objective = objective
        self.rng = np.random.default_rng(seed)

    def best_of_one_draw(self, choices: np.ndarray) -> tuple[int, float]:
        draw = self.objective.score(self.mean[choices] + self.std[choices] * self.rng.standard_normal(len(choices)))
        best = int(np.argmax(draw))
        return int(choices[best]), float(draw[best])


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
