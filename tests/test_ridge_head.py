"""The closed-form ridge head against an independent reference (scikit-learn's Ridge, and numpy's solve)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from e2t_al.model.ridge_head import LinearPlusRBFFeatures, RandomFrequencies, fit_ridge


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


def test_linear_plus_rbf_features_approximate_their_kernel():
    """ψ(φ)ᵀψ(φ') ≈ φᵀφ' + a² exp(−‖φ − φ'‖²/(2ℓ²)), with ℓ and a set on the support as the docstring says."""
    rng = np.random.default_rng(3)
    support = torch.tensor(rng.normal(size=(300, 4)))
    features = LinearPlusRBFFeatures.on_support(support, RandomFrequencies.draw(4, 20_000, seed=0))
    sample = support[:: 300 // 256][:256]
    assert features.length_scale.item() == pytest.approx(torch.pdist(sample).median().item())
    assert features.amplitude.item() ** 2 == pytest.approx((support - support.mean(0)).pow(2).sum(1).mean().item())
    a, b = support[:5], support[5:10]
    approximate = features(a) @ features(b).T
    distance = torch.cdist(a, b)
    exact = a @ b.T + features.amplitude**2 * torch.exp(-distance**2 / (2 * features.length_scale**2))
    np.testing.assert_allclose(approximate.numpy(), exact.numpy(), atol=0.05 * features.amplitude.item() ** 2)


def test_linear_plus_rbf_head_fits_a_curve_the_linear_head_cannot():
    rng = np.random.default_rng(4)
    phi = torch.tensor(rng.uniform(-3, 3, size=(200, 1)))
    y = torch.sin(2 * phi[:, 0]) + 0.05 * torch.tensor(rng.normal(size=200))
    query = torch.linspace(-2.5, 2.5, 50, dtype=torch.float64).unsqueeze(1)
    truth = torch.sin(2 * query[:, 0])
    linear = fit_ridge(phi, y, 1e-3)
    curved = fit_ridge(phi, y, 1e-3, RandomFrequencies.draw(1, 256, seed=0))
    linear_rmse = (linear.predict(query) - truth).pow(2).mean().sqrt().item()
    curved_rmse = (curved.predict(query) - truth).pow(2).mean().sqrt().item()
    assert curved_rmse < 0.3 * linear_rmse, (curved_rmse, linear_rmse)
    assert curved.weights.shape == (1 + 256,)
    assert torch.isfinite(curved.predictive_variance(query)).all()


def test_gradients_flow_through_the_rbf_features():
    """Not only through the linear part: the support's gradient differs from the linear head's."""
    torch.manual_seed(0)
    support, targets, query = torch.randn(30, 3), torch.randn(30), torch.randn(4, 3)
    gradients = []
    for rbf in (None, RandomFrequencies.draw(3, 64, seed=1)):
        phi = support.clone().requires_grad_(True)
        fit_ridge(phi, targets, 0.1, rbf).predict(query).sum().backward()
        assert phi.grad is not None and torch.isfinite(phi.grad).all() and phi.grad.abs().sum() > 0
        gradients.append(phi.grad)
    assert not torch.allclose(gradients[0], gradients[1], atol=1e-4)
