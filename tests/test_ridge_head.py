"""The closed-form ridge head against an independent reference (scikit-learn's Ridge, and numpy's solve)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from e2t_al.model.ridge_head import fit_ridge


@pytest.mark.parametrize("n,d", [(40, 8), (6, 12)])  # primal (n > d) and kernel form (n <= d)
@pytest.mark.parametrize("ridge_lambda", [1e-3, 0.1, 2.0])
def test_matches_sklearn_ridge_with_intercept(n, d, ridge_lambda):
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(n, d)) + 3.0  # off-centre, so the intercept matters
    y = phi @ rng.normal(size=d) + 5.0 + 0.1 * rng.normal(size=n)
    query = rng.normal(size=(7, d))
    head = fit_ridge(torch.tensor(phi), torch.tensor(y), ridge_lambda)
    reference = Ridge(alpha=n * ridge_lambda, fit_intercept=True).fit(phi, y)  # λ is per support sample
    np.testing.assert_allclose(head.predict(torch.tensor(query)).numpy(), reference.predict(query), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(head.weights.numpy(), reference.coef_, rtol=1e-6, atol=1e-8)


def test_kernel_form_equals_dual_formula():
    """ŷ = ȳ + k(q, S)(K + nλI)⁻¹(y − ȳ) with the centred linear kernel, written out with numpy."""
    rng = np.random.default_rng(1)
    phi, y, q = rng.normal(size=(5, 9)), rng.normal(size=5), rng.normal(size=(3, 9))
    lam = 0.3
    mean = phi.mean(0)
    k_ss = (phi - mean) @ (phi - mean).T
    k_qs = (q - mean) @ (phi - mean).T
    expected = y.mean() + k_qs @ np.linalg.solve(k_ss + 5 * lam * np.eye(5), y - y.mean())
    head = fit_ridge(torch.tensor(phi), torch.tensor(y), lam)
    np.testing.assert_allclose(head.predict(torch.tensor(q)).numpy(), expected, rtol=1e-8)


def test_predictive_variance_grows_away_from_support():
    rng = np.random.default_rng(2)
    phi = rng.normal(size=(50, 4))
    y = phi @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.2 * rng.normal(size=50)
    head = fit_ridge(torch.tensor(phi), torch.tensor(y), 0.01)
    near, far = torch.zeros(1, 4, dtype=torch.float64), torch.full((1, 4), 10.0, dtype=torch.float64)
    assert head.predictive_variance(far).item() > 5 * head.predictive_variance(near).item()
    assert head.predictive_variance(near).item() == pytest.approx(head.noise_variance.item(), rel=0.1)


def test_gradients_flow_to_the_embeddings():
    phi = torch.randn(20, 3, requires_grad=True)
    head = fit_ridge(phi, torch.randn(20), 0.1)
    head.predict(torch.randn(4, 3)).sum().backward()
    assert phi.grad is not None and torch.isfinite(phi.grad).all() and phi.grad.abs().sum() > 0
