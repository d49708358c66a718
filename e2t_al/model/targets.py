"""How models see targets: an optional log transform, then standardisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from e2t_al.data.dataset import DataError


@dataclass
class TargetScaling:
    """t = (g(y) − mean) / std, with g = identity or log (``E2TConfig.target_transform``); the inverse is
    y = g⁻¹(t · std + mean). ``mean`` and ``std`` are those of g(y) on the training targets (``fit``)."""

    transform: str = "identity"  # identity | log
    mean: float = 0.0
    std: float = 1.0

    def fit(self, targets: np.ndarray) -> "TargetScaling":
        transformed = self._transform(targets)
        self.mean, self.std = float(transformed.mean()), float(transformed.std() or 1.0)
        return self

    def scaled(self, targets: np.ndarray) -> torch.Tensor:
        """Targets ``(n,)`` as the model sees them (float32)."""
        return torch.as_tensor((self._transform(targets) - self.mean) / self.std, dtype=torch.float32)

    def to_target_units(self, scaled: torch.Tensor) -> torch.Tensor:
        transformed = scaled * self.std + self.mean
        return transformed.exp() if self.transform == "log" else transformed

    def std_to_target_units(self, scaled_std: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """A predictive standard deviation in model units → target units, at predictions ``mean`` (target units);
        for log by the delta method, d(eᵗ) = eᵗ dt."""
        std = scaled_std * self.std
        return mean * std if self.transform == "log" else std

    def _transform(self, targets: np.ndarray) -> np.ndarray:
        targets = np.asarray(targets, dtype=float)
        if self.transform == "log":
            if np.any(targets <= 0):
                raise DataError(f"target_transform 'log' needs positive targets; the smallest is {targets.min():g}")
            return np.log(targets)
        return targets
