"""BoTorch models that score a candidate pool from its descriptor features ``X`` (``n x d``).

- ``E2TEnsembleModel``: the E2T ensemble as a BoTorch ``EnsembleModel``; its posterior is BoTorch's
  ``EnsemblePosterior`` over the K members, so BoTorch's acquisition functions work on it unchanged.
- ``GaussianPoolModel``: Gaussians over a fixed pool, sampled with quasi-MC like a GP: the moment-matched ensemble
  (its mean and variance plus its error floor), or a GP's joint posterior over the pool computed once.
- ``fit_gp``: the baseline, a BoTorch ``SingleTaskGP`` on the same features (or on E2T embeddings).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.ensemble import EnsembleModel
from botorch.models.model import Model
from botorch.models.transforms import Normalize, Standardize
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.posteriors.gpytorch import GPyTorchPosterior
from botorch.sampling.base import MCSampler
from gpytorch.distributions import MultivariateNormal
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.operators import DenseLinearOperator, DiagLinearOperator

from e2t_al.acquisition.fit_memo import GPFitMemo
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import DescriptorInputs


GP_FIT_ITERATIONS = 50  # L-BFGS steps; ~0.4 s each on 1,250 HOIP materials with 98 descriptors (1 thread)


class E2TEnsembleModel(EnsembleModel):
    """Member k predicts f_k(x) = ȳ + (φ_k(x) − φ̄_k,S)ᵀ w_k,S with its ridge head fitted on the support set
    S = (``support_X``, ``support_y``): the measurements so far. The posterior at ``X`` (``batch x n x d``) is
    the ``EnsemblePosterior`` of values ``batch x K x n x 1``. A new measurement changes S, not the encoders:
    ``with_support`` returns the updated model without a gradient step (the instant update)."""

    def __init__(self, ensemble: E2TEnsemble, support_X: torch.Tensor, support_y: torch.Tensor):
        super().__init__()
        if ensemble.config.model.encoder.kind != "descriptor_mlp":
            raise ValueError("E2TEnsembleModel scores descriptor features; use a descriptor_mlp encoder")
        self._num_outputs = 1
        self.ensemble = ensemble
        self.support_X = torch.as_tensor(support_X, dtype=torch.float32)  # (n_s, d)
        self.support_y = torch.as_tensor(support_y, dtype=torch.float64).reshape(-1)  # (n_s,)
        support = DescriptorInputs(self.support_X, [])
        self.heads = [member.fit_head(support, self.support_y.numpy()) for member in ensemble.members]

    @property
    def ensemble_size(self) -> int:
        return len(self.heads)

    def on_pool(self, pool_X: torch.Tensor, chunk_size: int = 8192) -> "PooledEnsembleModel":
        """The same posterior over a fixed pool, every member's prediction computed once (in chunks)."""
        pool_X = torch.as_tensor(pool_X, dtype=torch.float64)
        with torch.no_grad():
            values = torch.cat([self.forward(pool_X[i:i + chunk_size])[..., 0] for i in range(0, len(pool_X), chunk_size)], dim=-1)
        return PooledEnsembleModel(values)

    def with_support(self, support_X: torch.Tensor, support_y: torch.Tensor) -> "E2TEnsembleModel":
        return E2TEnsembleModel(self.ensemble, support_X, support_y)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        flat = DescriptorInputs(X.reshape(-1, X.shape[-1]).to(torch.float32), [])
        values = torch.stack([member.target_scaling_.to_target_units(head.predict(member.embed(flat)))
                              for member, head in zip(self.ensemble.members, self.heads)])  # (K, N)
        values = values.reshape(len(self.heads), *X.shape[:-1]).movedim(0, -2)  # batch x K x n
        return values.unsqueeze(-1).to(X.dtype)

    def interval_std(self, pool_X: torch.Tensor, chunk_size: int = 8192) -> np.ndarray:
        """The ensemble's calibrated predictive standard deviation ``(n,)`` at ``pool_X (n, d)``
        (``E2TEnsemble.moments`` of the members' ``E2TRegressor.calibrated_std``), given this support set."""
        pool_X = torch.as_tensor(pool_X, dtype=torch.float32)
        means, stds = [], []
        for member, head in zip(self.ensemble.members, self.heads):
            embeddings = member.embed(DescriptorInputs(pool_X, []))
            mean = member.target_scaling_.to_target_units(head.predict(embeddings)).numpy()
            head_std = torch.cat([head.predictive_variance(embeddings[i:i + chunk_size]).sqrt()
                                  for i in range(0, len(embeddings), chunk_size)]).numpy()
            means.append(mean)
            stds.append(member.calibrated_std(member.target_scaling_.std_to_target_units(head_std, mean)))
        return self.ensemble.moments(np.vstack(means), np.vstack(stds))[1]

    def own_domain_held_out_mean(self, pool_X: torch.Tensor, support_index: np.ndarray, domains: np.ndarray) -> torch.Tensor:
        """The ensemble mean at every pool candidate ``(n,)`` with the candidate's own element domain taken out of
        the support set: m(x) = (1/K) Σ_k f_k(x | S ∖ D(x)). This is the prediction E2T was meta-trained to make
        (a domain from the others), so m − y on measured candidates is an honest extrapolation residual; for a
        domain with no measurement it is the ordinary instant-update prediction. ``pool_X (n, d)``; the support
        set is ``pool_X[support_index]`` with targets ``self.support_y``; ``domains (n,)`` labels."""
        pool_X = torch.as_tensor(pool_X, dtype=torch.float32)
        support_index = np.asarray(support_index)
        domains = np.asarray(domains)
        means = torch.zeros(len(pool_X), dtype=torch.float64)
        inputs = DescriptorInputs(pool_X, [])
        for member in self.ensemble.members:
            embeddings = member.embed(inputs)
            targets = member.target_scaling_.scaled(self.support_y.numpy())
            values = torch.zeros(len(pool_X), dtype=torch.float64)
            for domain in np.unique(domains):
                rows = np.flatnonzero(domains == domain)
                keep = domains[support_index] != domain
                if keep.sum() < 2:  # nothing else measured: the whole support set
                    keep[:] = True
                head = member.fit_ridge_head(embeddings[support_index[keep]], targets[keep])
                values[rows] = member.target_scaling_.to_target_units(head.predict(embeddings[rows])).to(torch.float64)
            means += values / len(self.ensemble.members)
        return means

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Members' embeddings, each standardised over the rows of ``X`` and concatenated, ``(n, K d_emb)``: for
        novelty, and the E2T-informed GP's kernel inputs with ``e2t_gp_kernel_inputs: embeddings``."""
        inputs = DescriptorInputs(torch.as_tensor(X, dtype=torch.float32), [])
        parts = []
        for member in self.ensemble.members:
            z = member.embed(inputs)
            parts.append((z - z.mean(0)) / (z.std(0) + 1e-6))
        return torch.cat(parts, dim=1)


class PooledEnsembleModel(EnsembleModel):
    """An ensemble posterior over a fixed candidate pool whose member values ``(K, n)`` are precomputed.
    Inputs are pool indices, ``batch x q x 1`` (float); the posterior values are ``batch x K x q x 1``.
    Scoring a pool then costs a gather per acquisition call instead of K encoder passes."""

    def __init__(self, member_values: torch.Tensor):
        super().__init__()
        self._num_outputs = 1
        self.member_values = member_values  # (K, n)

    @property
    def ensemble_size(self) -> int:
        return self.member_values.shape[0]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        values = self.member_values[:, X[..., 0].long()]  # K x batch x q
        return values.movedim(0, -2).unsqueeze(-1).to(X.dtype)

    def moment_matched(self, error_floor: float = 0.0) -> "GaussianPoolModel":
        """The Gaussian with the members' mean and variance (1/K) Σ_k (f_k − f̄)² plus ``error_floor``."""
        return GaussianPoolModel(self.member_values.mean(0), self.member_values.var(0, unbiased=False) + error_floor)


class GaussianPoolModel(Model):
    """Gaussians over a fixed pool: f(i) ~ N(μ_i, Σ_ij) for pool indices i, j. Inputs are pool indices,
    ``batch x q x 1`` (float); the posterior is a ``GPyTorchPosterior`` with a ``batch x q x q`` covariance, so
    BoTorch's quasi-MC samplers draw as many samples as asked (not only K members).

    - ``GaussianPoolModel(mean (n,), variance (n,))``: independent candidates, Σ = diag(σ²) (the moment-matched
      ensemble).
    - ``GaussianPoolModel.joint(model, pool_X, rows)``: a model's joint posterior over the pool rows ``rows (m,)``,
      computed once; an index outside them is refused."""

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor | None = None, covariance: torch.Tensor | None = None,
                 rows: np.ndarray | None = None):
        super().__init__()
        self.pool_mean = torch.as_tensor(mean, dtype=torch.float64)  # (n,)
        self.pool_variance = (None if variance is None  # (n,)
                              else torch.as_tensor(variance, dtype=torch.float64).clamp_min(1e-12))
        self.covariance = None if covariance is None else torch.as_tensor(covariance, dtype=torch.float64)  # (m, m)
        self.position = None  # (n,): each pool index's row in ``covariance``, −1 outside ``rows``
        if self.covariance is not None:
            self.position = torch.full((len(self.pool_mean),), -1, dtype=torch.long)
            self.position[torch.as_tensor(np.asarray(rows), dtype=torch.long)] = torch.arange(len(self.covariance))
        if (self.pool_variance is None) == (self.covariance is None):
            raise ValueError("GaussianPoolModel takes a variance (independent) or a covariance over rows (joint)")

    @classmethod
    def joint(cls, model: Model, pool_X: torch.Tensor, rows: np.ndarray) -> "GaussianPoolModel":
        """``model``'s joint posterior over ``pool_X[rows]`` (``pool_X (n, d)``), one posterior call. A q-batch
        acquisition then reads a q x q block per candidate, where a GP otherwise recomputes every candidate's
        covariance with its training data (for 279 candidates, 1,100 descriptor columns and 800 training rows,
        the size of a polymer window campaign: 27 s a greedy step against 0.04 s on one thread, the same values to
        1e-13)."""
        rows = np.asarray(rows, dtype=int)
        with torch.no_grad():
            posterior = model.posterior(torch.as_tensor(pool_X, dtype=torch.float64)[torch.as_tensor(rows)])
            mean = torch.full((len(pool_X),), float("nan"), dtype=torch.float64)
            mean[torch.as_tensor(rows)] = posterior.mean.reshape(-1).to(torch.float64)
            covariance = posterior.covariance_matrix.reshape(len(rows), len(rows)).to(torch.float64)
        return cls(mean, covariance=covariance, rows=rows)

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    def posterior(self, X: torch.Tensor, output_indices=None, observation_noise=False, posterior_transform=None, **kwargs):
        index = X[..., 0].long()  # batch x q
        if self.covariance is None:
            covariance = DiagLinearOperator(self.pool_variance[index].to(X.dtype))
        else:
            position = self.position[index]
            if (position < 0).any():
                raise ValueError("a pool index outside the rows whose joint posterior was computed")
            # lazy, as a GP's own: near-copies of a candidate make a singular block, which the samplers factor
            # with jitter (``psd_safe_cholesky``) where a dense MultivariateNormal would refuse it
            covariance = DenseLinearOperator(self.covariance[position[..., :, None], position[..., None, :]].to(X.dtype))
        posterior = GPyTorchPosterior(MultivariateNormal(self.pool_mean[index].to(X.dtype), covariance))
        return posterior_transform(posterior) if posterior_transform is not None else posterior


class EnsembleMemberSampler(MCSampler):
    """Every member once, in order: the "MC samples" of an ``EnsemblePosterior`` are exactly its K members, so a
    Monte-Carlo acquisition value is the exact member average, e.g. qEI(x) = (1/K) Σ_k max(f_k(x) − f*, 0)."""

    def __init__(self, ensemble_size: int):
        super().__init__(sample_shape=torch.Size([ensemble_size]))

    def forward(self, posterior: EnsemblePosterior) -> torch.Tensor:
        return posterior.values.movedim(-3, 0)  # K x batch x q x m


def mean_imputed(X: np.ndarray) -> np.ndarray:
    """Descriptors for the baselines that cannot take a missing value (GP, BayBE): each NaN replaced by its
    column's mean over all rows, the same convention as the E2T encoder's input scaling; ``(n, d)``."""
    X = np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():  # a column missing in every row gets 0 ("Mean of empty slice" is expected there)
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nan_to_num(np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0))
    return np.where(np.isfinite(X), X, means)


def fit_gp(train_X: torch.Tensor, train_y: torch.Tensor, max_iterations: int = GP_FIT_ITERATIONS,
           warm_start: SingleTaskGP | None = None, memo: GPFitMemo | None = None, refit: bool = True) -> SingleTaskGP:
    """``SingleTaskGP`` (BoTorch's default kernel, inferred noise) with normalised inputs and standardised outputs,
    hyper-parameters by maximum marginal likelihood (L-BFGS, at most ``max_iterations`` steps). ``warm_start``:
    a GP fitted on an earlier batch whose hyper-parameters seed the optimisation, or, with ``refit=False``, are kept
    as they are (the GP is then only conditioned on the new data). ``memo``: reuse an identical earlier fit
    (``GPFitMemo``). ``train_X (n, d)``, ``train_y (n,)``."""
    X = torch.as_tensor(train_X, dtype=torch.float64)
    Y = torch.as_tensor(train_y, dtype=torch.float64).reshape(-1, 1)
    model = SingleTaskGP(X, Y, input_transform=Normalize(d=X.shape[-1]), outcome_transform=Standardize(m=1))
    return fit_hyperparameters(model, max_iterations, warm_start, memo, refit)


def fit_hyperparameters(model: SingleTaskGP, max_iterations: int, warm_start: SingleTaskGP | None = None,
                        memo: GPFitMemo | None = None, refit: bool = True) -> SingleTaskGP:
    """Start ``model``'s kernel, noise and constant mean from ``warm_start``'s (when given), then maximise the
    marginal likelihood, or, with ``refit=False`` and a warm start, keep them: exact conditioning on the new
    training data with fixed hyper-parameters (a Cholesky, no optimisation)."""
    if warm_start is not None:  # parameters the two kernels share (a kernel term only one of them has is skipped)
        model.covar_module.load_state_dict(warm_start.covar_module.state_dict(), strict=False)
        model.likelihood.load_state_dict(warm_start.likelihood.state_dict())
        if hasattr(model.mean_module, "constant") and hasattr(warm_start.mean_module, "constant"):
            model.mean_module.constant.data.copy_(warm_start.mean_module.constant.data)
        if not refit:
            return model.eval()
    fit = memo.fit if memo is not None else fit_gpytorch_mll
    fit(ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs={"options": {"maxiter": max_iterations}})
    return model


def embedding_features(ensemble: E2TEnsemble, X: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Features for the GP-on-embeddings baseline: the first member's embedding φ(x), ``(n, d_emb)``."""
    return ensemble.members[0].embed(DescriptorInputs(torch.as_tensor(X, dtype=torch.float32), [])).to(torch.float64)
