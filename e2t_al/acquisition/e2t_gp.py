"""The E2T-informed GP (``surrogate: e2t_gp``): a BoTorch ``SingleTaskGP`` whose prior mean is the E2T ensemble.

    y(x) = m(x) + c + r(x) + ε,   r ~ GP(0, s² k(x, x') + s_D² 1[D(x) = D(x')]),   ε ~ N(0, σ²)

- m(x): E2T's level for x's element domain D(x): the mean over D(x)'s candidates of the ensemble's prediction
  with D(x) taken out of the support set (``E2TEnsembleModel.own_domain_held_out_mean``, ``domain_level``).
  Per candidate (``e2t_gp_prior: candidate``) the prediction itself is used instead; ``shrunk_order`` adds to the
  level b times the candidate's deviation from it, b the slope of true on predicted within-domain deviations that
  the members measured on the domains they held out of training (``E2TEnsemble.within_domain_slope``).
  Why the level: on HOIP with the three fluoride domains unexplored (seed 0), E2T put each domain's level within
  0.05-0.31 eV but ordered the pool poorly (Spearman 0.08), while a plain GP ordered it better (0.37) with its level
  1.5 eV too low. And the encoder has seen every measured domain in training, so per-candidate residuals there are
  in-sample small (0.10 eV): the GP learned a vanishing kernel and simply returned E2T's order. With the domain level
  as mean, the residuals are the within-domain variation, which the kernel learns on the descriptors: Spearman 0.67 on
  that pool, bias −0.27 eV.
- c: a learned constant (``ConstantMean``); k: BoTorch's dimension-scaled RBF kernel on the normalised
  descriptors, scaled by a learned s² (``ScaleKernel``), since residuals are smaller than the targets. (On the members'
  embeddings instead, ``e2t_gp_kernel_inputs: embeddings``: a clear negative on the discovery suite, see
  docs/benchmarks.md.)
- s_D² 1[D(x) = D(x')]: a residual shared by every material of one element domain (``SameDomainKernel``). E2T's
  error on an unseen domain is largely such a level (it under-predicted Ge-F by about 0.15 eV), so one
  measurement in the domain moves all its candidates, shrunk by s_D² against the noise.
- Optionally (``e2t_gp_scope_trend``), s_T² 1[x ∈ T] 1[x' ∈ T] k(x, x'): the campaign's scope T (the unexplored
  candidates) gets a descriptor trend of its own beside the one it shares with the measured domains, with the same
  length scales (``ScopeTrendKernel``). Together the two terms are an intrinsic coregionalisation model of two tasks,
  background and scope, with covariance matrix [[s², s²], [s², s² + s_T²]]: the correlation s / (s² + s_T²)^½
  between what the measured domains teach and what holds in the scope is learned from the scope's measurements,
  as BayBE's transfer learning learns it between its tasks. Measured worse on the discovery suite's development
  seeds (docs/benchmarks.md, "The scope's own trend"), so it is off by default.

With no measurement in a new domain, the posterior mean there is m + c + what the kernel carries over from
nearby domains: E2T's level. Each measurement in the domain then moves it as a GP moves, so it ranks like a GP.

The pool is fixed, so m is precomputed per candidate: the GP's inputs are the descriptors, then the element
domain's number, then the pool index (``pool_inputs``). Each kernel reads its columns (``active_dims``);
``PoolPriorMean`` reads the index. Hyper-parameters are fitted like the GP baseline's (``fit_hyperparameters``: warm starts, refits every few
batches, memo).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.exceptions import InputDataWarning
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.means import ConstantMean, Mean

from e2t_al.acquisition.fit_memo import GPFitMemo
from e2t_al.acquisition.models import GP_FIT_ITERATIONS, fit_hyperparameters


def per_candidate(table: torch.Tensor, pool_index: torch.Tensor) -> torch.Tensor:
    """``table (n,)``, one value per pool candidate, read at the pool indices held in an input column
    (``pool_index``, any batch shape, float as the GP's inputs are), in the inputs' dtype."""
    return table[pool_index.round().long()].to(pool_index.dtype)


class PoolPriorMean(Mean):
    """m(x) = table[i(x)] + c, where i(x) is the pool index held in the input's last column, ``table (n,)`` the
    prior mean of every pool candidate (in the GP's standardised units) and c a learned constant, or 0 with
    ``learn_offset=False``."""

    def __init__(self, table: torch.Tensor, learn_offset: bool = True):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float64))
        self.offset = ConstantMean()
        self.offset.constant.requires_grad_(learn_offset)

    @property
    def constant(self) -> torch.nn.Parameter:  # warm starts copy it like a ConstantMean's
        return self.offset.constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # batch x n x (d + 1) -> batch x n
        return per_candidate(self.table, x[..., -1]) + self.offset(x)


def same_domain(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """1 where a row of ``x1`` and a row of ``x2`` hold the same domain number in their first column, else 0:
    ``batch x n1 x n2``."""
    return (x1[..., :, None, 0] == x2[..., None, :, 0]).to(x1.dtype)


class SameDomainKernel(Kernel):
    """k(x, x') = 1 where x and x' belong to the same element domain, else 0; its one input column holds the
    domain's number (``active_dims``)."""

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        if diag:
            return torch.ones(x1.shape[:-1], dtype=x1.dtype)
        return same_domain(x1, x2)


class ScopeLevelKernel(Kernel):
    """k(x, x') = u_i u_j 1[D(x) = D(x')] with fixed u per pool candidate (``level_std (n,)``, read by the pool
    index): a level shared by a domain whose size E2T's own validation error sets, for the domains in the
    campaign's scope only. The measured domains' levels are known, E2T's level for an unexplored one is not.
    Input columns: the domain's number, then the pool index (``active_dims``)."""

    def __init__(self, level_std: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("level_std", torch.as_tensor(level_std, dtype=torch.float64))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        u1, u2 = per_candidate(self.level_std, x1[..., 1]), per_candidate(self.level_std, x2[..., 1])
        if diag:
            return u1**2
        return u1[..., :, None] * u2[..., None, :] * same_domain(x1, x2)


class ScopeTrendKernel(Kernel):
    """k_T(x, x') = 1[x ∈ T] 1[x' ∈ T] k(x, x'): the descriptor kernel k, only between two candidates of the
    campaign's scope T (``in_scope (n,)``, read by the pool index in the input's last column). k is the GP's own
    descriptor kernel, shared: its length scales (and their prior, counted once in the marginal likelihood) belong
    to the shared term, so this kernel holds it without registering it as a second child module."""

    def __init__(self, descriptor_kernel: Kernel, in_scope: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.__dict__["descriptor_kernel"] = descriptor_kernel  # shared with the first term, not a child module
        self.register_buffer("in_scope", torch.as_tensor(in_scope, dtype=torch.float64))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        u1, u2 = per_candidate(self.in_scope, x1[..., -1]), per_candidate(self.in_scope, x2[..., -1])
        if diag:
            return u1 * u2 * self.descriptor_kernel(x1, x2, diag=True)
        return u1[..., :, None] * u2[..., None, :] * self.descriptor_kernel(x1, x2).to_dense()


def has_scope_trend(gp: SingleTaskGP | None) -> bool:
    """Whether an E2T-informed GP's kernel holds the scope's own trend (``ScopeTrendKernel``)."""
    return gp is not None and any(isinstance(module, ScopeTrendKernel) for module in gp.covar_module.modules())


def has_domain_levels(gp: object) -> bool:
    """Whether a model is an E2T-informed GP with a level shared by each element domain (``SameDomainKernel``)."""
    covar = getattr(gp, "covar_module", None)
    return covar is not None and any(isinstance(module, SameDomainKernel) for module in covar.modules())


def scope_trend_scales(gp: SingleTaskGP) -> tuple[float, float]:
    """``(s², s_T²)`` of a GP with the scope's own trend: the output scales of the shared descriptor term and of the
    scope's term, found by what they wrap (the scope's term holds the shared term's descriptor kernel)."""
    scaled = [module for module in gp.covar_module.modules() if isinstance(module, ScaleKernel)]
    own = next(module for module in scaled if isinstance(module.base_kernel, ScopeTrendKernel))
    shared = next(module for module in scaled if module.base_kernel is own.base_kernel.descriptor_kernel)
    return shared.outputscale.item(), own.outputscale.item()


def domain_level(values: torch.Tensor, domains: np.ndarray) -> torch.Tensor:
    """Each candidate's value replaced by the mean over its element domain's candidates, ``(n,)``."""
    values = torch.as_tensor(values, dtype=torch.float64).clone()
    domains = np.asarray(domains).astype(str)
    for domain in np.unique(domains):
        rows = torch.as_tensor(np.flatnonzero(domains == domain))
        values[rows] = values[rows].mean()
    return values


def shrunk_order(values: torch.Tensor, domains: np.ndarray, slope: float) -> torch.Tensor:
    """m(x) = level_D(x) + b (v(x) − level_D(x)), ``(n,)``: each candidate's value ``values (n,)`` pulled towards its
    element domain's mean (``domain_level``) by the slope b in [0, 1] (0: the level, 1: the value itself)."""
    level = domain_level(values, domains)
    return level + slope * (torch.as_tensor(values, dtype=torch.float64) - level)


def pool_inputs(features: np.ndarray | torch.Tensor, domains: np.ndarray) -> torch.Tensor:
    """The GP's inputs for a pool, ``(n, d + 2)``: descriptors ``(n, d)``, the number of each candidate's element
    domain (labels ``domains (n,)``), and its pool index."""
    features = torch.as_tensor(features, dtype=torch.float64)
    _, domain_number = np.unique(np.asarray(domains).astype(str), return_inverse=True)
    return torch.cat([features, torch.as_tensor(domain_number, dtype=torch.float64).unsqueeze(-1),
                      torch.arange(len(features), dtype=torch.float64).unsqueeze(-1)], dim=-1)


def in_domains_of_their_own(inputs: torch.Tensor) -> torch.Tensor:
    """``pool_inputs`` rows ``(r, d + 2)`` with each row's domain number replaced by −1 − its pool index: under the
    same-domain term no such row shares a level with a pool candidate (their numbers count from 0) or with another."""
    inputs = inputs.clone()
    inputs[..., -2] = -1.0 - inputs[..., -1]
    return inputs


def fit_e2t_gp(pool_X: torch.Tensor, prior_mean: torch.Tensor, train_index: np.ndarray, train_y: np.ndarray,
               max_iterations: int = GP_FIT_ITERATIONS, warm_start: SingleTaskGP | None = None,
               memo: GPFitMemo | None = None, refit: bool = True, level_std: torch.Tensor | None = None,
               learn_offset: bool = True, scope_trend: np.ndarray | None = None) -> SingleTaskGP:
    """The E2T-informed GP on the measured candidates ``train_index`` with values ``train_y``.

    Args:
        pool_X: ``pool_inputs(descriptors, domains)``, ``(n, d + 2)``; missing descriptors already imputed (or
            the members' embeddings in place of the descriptors).
        prior_mean: E2T's prediction for every candidate, target units, ``(n,)``.
        warm_start, memo, refit: as for ``fit_gp``.
        level_std: optional ``(n,)``, target units: adds ``ScopeLevelKernel`` (E2T's level error for the
            candidates of unexplored domains, 0 elsewhere).
        learn_offset: learn the constant c on top of E2T's prior mean. Far from every training row the posterior
            mean falls back to prior + c, and c trades off against a long-length-scale kernel: on polymer class 15
            held out (2 members, seed 0), c came out at −1.04 standard deviations and put the class 370 J/(kg K)
            below E2T's level (R² 0.13 against E2T's 0.78). False keeps c = 0.
        scope_trend: optional ``(n,)`` booleans, the campaign's scope: adds the scope's own trend
            s_T² 1[x ∈ T] 1[x' ∈ T] k(x, x'), k the descriptor kernel itself (shared length scales).
    """
    X = torch.as_tensor(pool_X, dtype=torch.float64)[torch.as_tensor(np.asarray(train_index))]
    Y = torch.as_tensor(np.asarray(train_y), dtype=torch.float64).reshape(-1, 1)
    d = X.shape[-1] - 2
    outcome = Standardize(m=1)
    outcome(Y)  # learns the standardisation; SingleTaskGP applies the same to Y, and the prior mean must match it
    table = (torch.as_tensor(prior_mean, dtype=torch.float64) - outcome.means.reshape(())) / outcome.stdvs.reshape(())
    descriptor_kernel = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=list(range(d)))
    kernel = ScaleKernel(descriptor_kernel) + ScaleKernel(SameDomainKernel(active_dims=[d]))
    if scope_trend is not None:
        kernel = kernel + ScaleKernel(ScopeTrendKernel(descriptor_kernel, torch.as_tensor(np.asarray(scope_trend, dtype=bool))))
    if level_std is not None:
        kernel = kernel + ScopeLevelKernel(torch.as_tensor(level_std, dtype=torch.float64) / outcome.stdvs.reshape(()),
                                           active_dims=[d, d + 1])
    with warnings.catch_warnings():  # the domain number and pool index are left unscaled on purpose
        warnings.simplefilter("ignore", InputDataWarning)
        model = SingleTaskGP(X, Y, covar_module=kernel, mean_module=PoolPriorMean(table, learn_offset),
                             input_transform=Normalize(d=d + 2, indices=list(range(d))), outcome_transform=outcome)
        return fit_hyperparameters(model, max_iterations, warm_start, memo, refit)
