"""An ensemble of E2T meta-learners: predictive mean and standard deviation per candidate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from e2t_al.config import AdaptationConfig, EnsembleConfig
from e2t_al.data.dataset import DataError
from e2t_al.model.e2t import E2TRegressor
from e2t_al.model.inputs import MaterialInputs

SEED_STRIDE = 1000  # member k of an ensemble with base seed s uses seed s + k·SEED_STRIDE


class E2TEnsemble:
    """K E2T members that differ in seed: initial weights, episode draws, and which domains each holds out
    for validation (a bootstrap over domains, so members disagree where the data leave a domain unconstrained).

    For a query x with member predictions μ_k(x), mean(x) = (1/K) Σ_k μ_k(x). The variance depends on
    ``EnsembleConfig.interval``:
    - ``validation_floor``: var(x) = (1/K) Σ_k (μ_k(x) − mean(x))² + (1/K) Σ_k r_k², the members' disagreement plus
      the error r_k (RMSE) each member showed on the domains it held out of training, a floor that disagreement
      alone cannot know; one width everywhere.
    - ``head``: var(x) = (1/K) Σ_k σ_k(x)², with σ_k the member's calibrated standard deviation
      (``E2TRegressor.interval_std``: its ridge head's predictive σ, scaled to its errors on the held-out domains), which
      grows where x's embedding lies outside the support's. σ_k² already holds the member's whole extrapolation
      error, so the disagreement is not added again (with it, 5 of HOIP's 12 domains were covered 85-95%, without
      it 9, seed 0).
    - ``head_quantile``: as ``head``, with each member's σ_k rescaled from its variance scale c_k to its quantile
      scale c_q,k (``E2TRegressor``: ±1.645 c_q,k s_k(x) holds 90% of its errors on its held-out domains).

    ``error_floor`` (the members' mean validation MSE, one number) is what the acquisition's Gaussian posterior and
    the E2T-informed GP's level use.
    """

    def __init__(self, config: EnsembleConfig | None = None, base_seed: int = 0):
        self.config = config or EnsembleConfig()
        self.base_seed = base_seed
        self.members: list[E2TRegressor] = []

    def member_config(self, k: int):
        cfg = self.config.model.model_copy(deep=True)
        cfg.training.seed = self.base_seed + k * SEED_STRIDE
        return cfg

    def fit(self, inputs: MaterialInputs, targets: np.ndarray, domain_keys: list[frozenset[str]], progress: bool = True) -> "E2TEnsemble":
        self.members = [E2TRegressor(self.member_config(k)).fit(inputs, targets, domain_keys, progress=progress)
                        for k in range(self.config.members)]
        return self

    def fine_tune(self, inputs: MaterialInputs, targets: np.ndarray, domain_keys: list[frozenset[str]], new_index: np.ndarray,
                  config: AdaptationConfig, progress: bool = False) -> "E2TEnsemble":
        """A fine-tuned copy: every member fine-tuned from its own weights (``E2TRegressor.fine_tune``)."""
        tuned = E2TEnsemble(self.config, self.base_seed)
        tuned.members = [m.fine_tune(inputs, targets, domain_keys, new_index, config, seed=m.config.training.seed + 1, progress=progress)
                         for m in self.members]
        return tuned

    def error_floor(self) -> float:
        """(1/K) Σ_k r_k², the members' mean squared extrapolation error on their validation domains."""
        errors = [m.validation_rmse_ for m in self.members if m.validation_rmse_ is not None]
        return float(np.mean(np.square(errors))) if errors else 0.0

    def within_domain_slope(self) -> float | None:
        """How far the members' order inside an unseen domain carries, in [0, 1]: the members' mean
        ``validation_within_slope_`` (the slope of true on predicted within-domain deviations, on the domains each
        held out of training), clipped; None where no member measured one."""
        slopes = [m.validation_within_slope_ for m in self.members if m.validation_within_slope_ is not None]
        return float(np.clip(np.mean(slopes), 0.0, 1.0)) if slopes else None

    def quantile_to_variance_scales(self) -> np.ndarray:
        """c_q,k / c_k per member ``(K,)``: what turns a member's ``head`` σ into its ``head_quantile`` σ (1 where a
        member has no quantile scale)."""
        return np.array([m.validation_std_quantile_scale_ / m.validation_std_scale_
                         if m.validation_std_quantile_scale_ is not None and m.validation_std_scale_ else 1.0
                         for m in self.members])

    def member_intervals(self, query: MaterialInputs, support: MaterialInputs, support_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each member's prediction and calibrated standard deviation, shapes ``(K, m)`` and ``(K, m)``."""
        if not self.members:
            raise RuntimeError("E2TEnsemble is not fitted: call fit() or load() first")
        means, stds = zip(*(m.interval_std(query, support, support_targets) for m in self.members))
        return np.vstack(means), np.vstack(stds)

    def predict(self, query: MaterialInputs, support: MaterialInputs, support_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation, each of shape ``(m,)`` (the class formula)."""
        return self.moments(*self.member_intervals(query, support, support_targets))

    def moments(self, member_predictions: np.ndarray, member_stds: np.ndarray, kind: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation ``(m,)`` from the members' predictions and calibrated standard deviations
        ``(K, m)`` (the class formula, by ``kind``: ``head``, ``head_quantile`` or ``validation_floor``; None:
        ``config.interval``)."""
        kind = kind or self.config.interval
        if kind == "head_quantile":
            member_stds = member_stds * self.quantile_to_variance_scales()[:, None]
        if kind in ("head", "head_quantile"):
            return member_predictions.mean(0), np.sqrt(np.mean(member_stds**2, axis=0))
        return member_predictions.mean(0), np.sqrt(member_predictions.var(0) + self.error_floor())

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for k, member in enumerate(self.members):
            member.save(folder / f"member_{k}.pt")
        (folder / "ensemble.json").write_text(json.dumps({"config": self.config.model_dump(mode="json"), "base_seed": self.base_seed, "members": len(self.members)}, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "E2TEnsemble":
        folder = Path(folder)
        meta_path = folder / "ensemble.json"
        if not meta_path.exists():
            raise DataError(f"no saved ensemble in {folder} (ensemble.json missing)")
        meta = json.loads(meta_path.read_text())
        ensemble = cls(EnsembleConfig.model_validate(meta["config"]), meta["base_seed"])
        ensemble.members = [E2TRegressor.load(folder / f"member_{k}.pt") for k in range(meta["members"])]
        return ensemble
