"""The closed-form kernel-ridge head of E2T."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RidgeFit:
    """A ridge head fitted on one support set.

    Model, with linear kernel k(x, x') = φ(x)ᵀφ(x') on embeddings and an unpenalised intercept:
        ŷ(x) = ȳ + (φ(x) − φ̄)ᵀ w,
        w = argmin_w (1/n) Σ_i (y_i − ȳ − (φ_i − φ̄)ᵀ w)² + λ ‖w‖²
          = (ΦcᵀΦc + nλ I)⁻¹ Φcᵀ yc            (primal, d × d)
          = Φcᵀ (ΦcΦcᵀ + nλ I)⁻¹ yc            (dual / kernel form, n × n),
    where Φc (n, d) and yc (n,) are the centred support embeddings and targets. λ is per support sample,
    so one value suits support sets of any size.

    Read as Bayesian linear regression (w ~ N(0, σ²/(nλ) I), noise σ²), the predictive variance is
        σ² (1 + φcᵀ (ΦcᵀΦc + nλ I)⁻¹ φc),  σ² estimated from the support residuals.
    """

    weights: torch.Tensor  # (d,)
    embedding_mean: torch.Tensor  # (d,)
    target_mean: torch.Tensor  # ()
    precision_cholesky: torch.Tensor  # (d, d): Cholesky factor of ΦcᵀΦc + nλ I
    noise_variance: torch.Tensor  # ()

    def predict(self, query_embeddings: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,)
        return self.target_mean + (query_embeddings - self.embedding_mean) @ self.weights

    def predictive_variance(self, query_embeddings: torch.Tensor) -> torch.Tensor:  # (m, d) -> (m,)
        centred = query_embeddings - self.embedding_mean
        solved = torch.cholesky_solve(centred.T, self.precision_cholesky)  # (d, m)
        return self.noise_variance * (1.0 + (centred.T * solved).sum(0))


def fit_ridge(support_embeddings: torch.Tensor, support_targets: torch.Tensor, ridge_lambda: float) -> RidgeFit:
    """Closed-form ridge fit (see ``RidgeFit``) of targets ``(n,)`` on embeddings ``(n, d)``; differentiable."""
    n, d = support_embeddings.shape
    embedding_mean = support_embeddings.mean(0)
    target_mean = support_targets.mean()
    phi = support_embeddings - embedding_mean
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
    return RidgeFit(weights, embedding_mean, target_mean, cholesky, noise_variance)
