"""Baselines for the extrapolation benchmark: the same encoder trained by plain regression, and ridge on descriptors."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.impute import SimpleImputer

from e2t_al.config import E2TConfig
from e2t_al.model.encoders import build_encoder
from e2t_al.model.inputs import MaterialInputs
from e2t_al.model.targets import TargetScaling
from e2t_al.model.training import seeded, train_with_early_stopping

VALIDATION_FRACTION = 0.1
BATCH_SIZE = 128


class RegressionNN:
    """ŷ(x) = aᵀφ_θ(x) + b with the E2T encoder φ_θ, trained by minimising the mean squared error over the
    training materials (mini-batches, early stopping on a random 10% split): the usual supervised model,
    whose only difference from E2T is the training objective."""

    def __init__(self, config: E2TConfig | None = None):
        self.config = config or E2TConfig()
        self.network: torch.nn.Module | None = None

    def fit(self, inputs: MaterialInputs, targets: np.ndarray, progress: bool = True) -> "RegressionNN":
        cfg = self.config
        rng = np.random.default_rng(cfg.training.seed)
        self.target_scaling_ = TargetScaling(cfg.target_transform).fit(targets)  # the same target units as E2T
        y = self.target_scaling_.scaled(targets)
        order = rng.permutation(len(inputs))
        n_val = max(1, int(len(order) * VALIDATION_FRACTION))
        val, train = torch.as_tensor(order[:n_val]), order[n_val:]
        with seeded(cfg.training.seed):  # the initial weights
            encoder = build_encoder(inputs, cfg.encoder)
            self.network = torch.nn.Sequential(encoder, torch.nn.Linear(cfg.encoder.embedding_dim, 1))

        def training_loss() -> torch.Tensor:
            batch = torch.as_tensor(rng.choice(train, size=min(BATCH_SIZE, len(train)), replace=False))
            return (self.network(inputs.batch(batch)).squeeze(1) - y[batch]).pow(2).mean()

        def validation_loss() -> float:
            return float((self.network(inputs.batch(val)).squeeze(1) - y[val]).pow(2).mean())

        train_with_early_stopping(self.network, training_loss, validation_loss, cfg.training,
                                  description=f"NN seed {cfg.training.seed}", progress=progress)
        return self

    def predict(self, inputs: MaterialInputs) -> np.ndarray:
        if self.network is None:
            raise RuntimeError("RegressionNN is not fitted")
        with torch.no_grad():
            out = self.network(inputs.batch(torch.arange(len(inputs)))).squeeze(1)
        return self.target_scaling_.to_target_units(out).numpy()

    def embed(self, inputs: MaterialInputs) -> np.ndarray:
        """The encoder's embedding φ_θ(x) of every material, ``(n, embedding_dim)``."""
        if self.network is None:
            raise RuntimeError("RegressionNN is not fitted")
        self.network.eval()
        with torch.no_grad():
            return self.network[0](inputs.batch(torch.arange(len(inputs)))).numpy()


class RidgeOnEmbedding:
    """The paper's "MPNN-Linear"-style baseline: a plain-regression network's embedding φ_θ (``RegressionNN``) frozen,
    and a ridge regression on it (standardised, penalty by leave-one-out CV) fitted on the training materials.
    Against E2T it isolates the training objective: same encoder and a linear head, but no episodes."""

    def __init__(self, network: RegressionNN, alphas: list[float]):
        self.network = network
        self.ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))

    def fit(self, inputs: MaterialInputs, targets: np.ndarray) -> "RidgeOnEmbedding":
        self.ridge.fit(self.network.embed(inputs), np.asarray(targets, dtype=float))
        return self

    def predict(self, inputs: MaterialInputs) -> np.ndarray:
        return self.ridge.predict(self.network.embed(inputs))


def ridge_on_descriptors(alphas: list[float]):
    """Ridge regression on standardised descriptors (mean-imputed), penalty chosen by leave-one-out CV."""
    return make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler(), RidgeCV(alphas=alphas))
