"""The closed-form kernel-ridge head of E2T."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

LENGTH_SCALE_SAMPLE = 256  # support embeddings whose pairwise distances set the RBF length scale


@dataclass
class RidgeFit:
    """A ridge head fitted on one support set.

    Model, with linear kernel k(x, x') = φ(x)ᵀφ(x') on embeddings and an unpenalised intercept:
        ŷ(x) = ȳ + (φ(x) − φ̄)ᵀ w,
        w = argmin_w (1/n) Σ_i (y_i − ȳ − (φ_i − φ̄)ᵀ w)² + λ ‖w‖²
          = (ΦcᵀΦc + nλ I)⁻¹ Φcᵀ yc            (primal, d × d)
          = Φcᵀ (ΦcΦcᵀ + nλ I)⁻¹ yc            (dual / kernel form, n × n),
    where Φc (n, d) and yc (n,) are the centred support embeddings and targets. λ is per support sample,
    so one value suits support sets of any size. With ``features`` (``LinearPlusRBFFeatures``) φ stands for the
    features of the embedding, and the kernel is theirs.

    Read as Bayesian linear regression (w ~ N(0, σ²/(nλ) I), noise σ²), the predictive variance is
        σ² (1 + φcᵀ (ΦcᵀΦc + nλ I)⁻¹ φc),  σ² estimated from the support residuals.
    """

    weights: torch.Tensor  # (d,)
    feature_mean: torch.Tensor  # (d,): the mean of the support's features (its embeddings, with the linear kernel)
    target_mean: torch.Tensor  # ()
    precision_cholesky: torch.Tensor  # (d, d): Cholesky factor of ΦcᵀΦc + nλ I
    noise_variance: torch.Tensor  # ()
    # The head's features of an embedding, (m, d_emb) -> (m, d); None: the embedding itself (the linear kernel).
    features: Callable[[torch.Tensor], torch.Tensor] | None = None

    def _centred(self, query_embeddings: torch.Tensor) -> torch.Tensor:  # (m, d_emb) -> (m, d)
        features = query_embeddings if self.features is None else self.features(query_embeddings)
        return features - self.feature_mean

    def predict(self, query_embeddings: torch.Tensor) -> torch.Tensor:  # (m, d_emb) -> (m,)
        return self.target_mean + self._centred(query_embeddings) @ self.weights

    def predictive_variance(self, query_embeddings: torch.Tensor) -> torch.Tensor:  # (m, d_emb) -> (m,)
        centred = self._centred(query_embeddings)
        solved = torch.cholesky_solve(centred.T, self.precision_cholesky)  # (d, m)
        return self.noise_variance * (1.0 + (centred.T * solved).sum(0))


@dataclass
class RandomFrequencies:
    """Ω (D, d_emb) with N(0, 1) entries and phases β (D,) uniform on [0, 2π): one draw per model, kept fixed."""

    frequencies: torch.Tensor  # (D, d_emb)
    phases: torch.Tensor  # (D,)

    @classmethod
    def draw(cls, embedding_dim: int, count: int, seed: int) -> "RandomFrequencies":
        generator = torch.Generator().manual_seed(seed)
        return cls(torch.randn(count, embedding_dim, generator=generator),
                   2 * math.pi * torch.rand(count, generator=generator))


@dataclass
class LinearPlusRBFFeatures:
    """Head features ψ(φ) = [φ, a √(2/D) cos(Ω φ / ℓ + β)] (Rahimi & Recht's random Fourier features), so that
        ψ(φ)ᵀψ(φ') ≈ φᵀφ' + a² exp(−‖φ − φ'‖² / (2ℓ²)):
    the linear kernel, which extrapolates along the embedding, plus an RBF kernel, which bends the fit locally and
    whose covariance vanishes far from the support (with D features, only approximately). Set on the support
    (without gradient): ℓ the median pairwise distance of its embeddings (of at most ``LENGTH_SCALE_SAMPLE`` of them,
    evenly spaced) and a² the mean squared norm of its centred embeddings, so that both kernels are of one size."""

    random: RandomFrequencies
    length_scale: torch.Tensor  # ()
    amplitude: torch.Tensor  # ()

    @classmethod
    def on_support(cls, support_embeddings: torch.Tensor, random: RandomFrequencies) -> "LinearPlusRBFFeatures":
        support = support_embeddings.detach()
        sample = support[:: max(1, len(support) // LENGTH_SCALE_SAMPLE)][:LENGTH_SCALE_SAMPLE]
        length_scale = torch.pdist(sample).median().clamp_min(1e-6) if len(sample) > 1 else support.new_tensor(1.0)
        amplitude = (support - support.mean(0)).pow(2).sum(1).mean().sqrt().clamp_min(1e-6)
        return cls(random, length_scale, amplitude)

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:  # (m, d_emb) -> (m, d_emb + D)
        frequencies = self.random.frequencies.to(embeddings.dtype)
        phases = self.random.phases.to(embeddings.dtype)
        scale = self.amplitude.to(embeddings.dtype) * math.sqrt(2.0 / len(phases))
        rbf = scale * torch.cos(embeddings @ frequencies.T / self.length_scale.to(embeddings.dtype) + phases)
        return torch.cat([embeddings, rbf], dim=1)


def fit_ridge(support_embeddings: torch.Tensor, support_targets: torch.Tensor, ridge_lambda: float,
              rbf: RandomFrequencies | None = None) -> RidgeFit:
    """Closed-form ridge fit (see ``RidgeFit``) of targets ``(n,)`` on embeddings ``(n, d_emb)``; differentiable.
    With ``rbf``, on the features of ``LinearPlusRBFFeatures`` instead of the embeddings themselves."""
    features = None if rbf is None else LinearPlusRBFFeatures.on_support(support_embeddings, rbf)
    support_features = support_embeddings if features is None else features(support_embeddings)
    n, d = support_features.shape
    feature_mean = support_features.mean(0)
    target_mean = support_targets.mean()
    phi = support_features - feature_mean
    y = support_targets - target_mean
    precision = phi.T @ phi + n * ridge_lambda * torch.eye(d, dtype=phi.dtype)
    cholesky = torch.linalg.cholesky(precision)
    if n > d:
        weights = torch.cholesky_solve((phi.T @ y).unsqueeze(1), cholesky).squeeze(1)
    else:  # kernel form: an n × n solve is the smaller one
        gram = phi @ phi.T + n * ridge_lambda * torch.eye(n, dtype=phi.dtype)
        weights = phi.T @ torch.linalg.solve(gram, y)
    residuals = y - phi @ weights
    noise_variance = residuals.pow(2).sum() / max(n - 1, 1)
    return RidgeFit(weights, feature_mean, target_mean, cholesky, noise_variance, features)
