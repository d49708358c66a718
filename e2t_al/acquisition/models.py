"""BoTorch models that score a candidate pool from its descriptor features ``X`` (``n x d``).

- ``E2TEnsembleModel``: the E2T ensemble as a BoTorch ``EnsembleModel``; its posterior is BoTorch's
  ``EnsemblePosterior`` over the K members, so BoTorch's acquisition functions work on it unchanged.
- ``fit_gp``: the baseline, a BoTorch ``SingleTaskGP`` on the same features (or on E2T embeddings).
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.ensemble import EnsembleModel
from botorch.models.transforms import Normalize, Standardize
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.base import MCSampler
from gpytorch.mlls import ExactMarginalLogLikelihood

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

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Members' embeddings averaged over members after standardising each, ``(n, d_emb)``: for novelty."""
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
    means = np.nan_to_num(np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0))
    return np.where(np.isfinite(X), X, means)


def fit_gp(train_X: torch.Tensor, train_y: torch.Tensor, max_iterations: int = GP_FIT_ITERATIONS,
           warm_start: SingleTaskGP | None = None, memo: GPFitMemo | None = None) -> SingleTaskGP:
    """``SingleTaskGP`` (Matérn-5/2 ARD, inferred noise) with normalised inputs and standardised outputs,
    hyper-parameters by maximum marginal likelihood (L-BFGS, at most ``max_iterations`` steps). ``warm_start``:
    a GP fitted on an earlier batch whose kernel and noise hyper-parameters seed the optimisation. ``memo``: reuse
    an identical earlier fit (``GPFitMemo``). ``train_X (n, d)``, ``train_y (n,)``."""
    X = torch.as_tensor(train_X, dtype=torch.float64)
    Y = torch.as_tensor(train_y, dtype=torch.float64).reshape(-1, 1)
    model = SingleTaskGP(X, Y, input_transform=Normalize(d=X.shape[-1]), outcome_transform=Standardize(m=1))
    if warm_start is not None:
        model.covar_module.load_state_dict(warm_start.covar_module.state_dict())
        model.likelihood.load_state_dict(warm_start.likelihood.state_dict())
    fit = memo.fit if memo is not None else fit_gpytorch_mll
    fit(ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs={"options": {"maxiter": max_iterations}})
    return model


def embedding_features(ensemble: E2TEnsemble, X: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Features for the GP-on-embeddings baseline: the first member's embedding φ(x), ``(n, d_emb)``."""
    return ensemble.members[0].embed(DescriptorInputs(torch.as_tensor(X, dtype=torch.float32), [])).to(torch.float64)
