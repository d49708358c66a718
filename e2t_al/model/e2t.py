"""The E2T meta-learner: y = f(x, S), an encoder φ and a kernel-ridge head fitted in closed form on the support S."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

from e2t_al.config import AdaptationConfig, E2TConfig
from e2t_al.data.dataset import DataError
from e2t_al.model.encoders import build_encoder
from e2t_al.model.episodes import Episode, EpisodeSampler
from e2t_al.model.inputs import CrystalGraphInputs, DescriptorInputs, MaterialInputs, subset_inputs
from e2t_al.model.ridge_head import RandomFrequencies, RidgeFit, fit_ridge
from e2t_al.model.targets import TargetScaling
from e2t_al.model.training import TrainingHistory, seeded, train_with_early_stopping

Z_90 = float(norm.ppf(0.95))  # half-width of a central 90% Gaussian interval, in standard deviations

EMBED_CHUNK = 2048  # materials embedded at once at prediction time


def choose_validation_domains(domain_keys: list[frozenset[str]], count: int, seed: int) -> list[str]:
    """``count`` domain keys drawn at random among those with enough materials to be query domains."""
    eligible = EpisodeSampler(domain_keys, E2TConfig().episodes).query_domains
    if count <= 0 or len(eligible) <= count + 1:
        return []
    return sorted(np.random.default_rng(seed).choice(eligible, size=count, replace=False).tolist())


class E2TRegressor:
    """Extrapolative episodic training (Noda et al., Commun. Mater. 2025).

    f(x, S) = ȳ_S + (φ_θ(x) − φ̄_S)ᵀ w_S(θ), with w_S the closed-form ridge solution on the support
    embeddings (``RidgeFit``). Training minimises the query error of episodes whose query domain is absent
    from the support (``EpisodeSampler``), so θ learns embeddings on which a ridge fit extrapolates.
    A few domains are held out of training entirely: early stopping watches their error, and their
    RMSE (``validation_rmse_``, target units) is this member's measured extrapolation error.

    Interval: the head's predictive standard deviation s(x) (``RidgeFit``: larger where the query's embedding lies
    outside the support's) is calibrated on those held-out domains by one factor, ``validation_std_scale_``
    c² = mean over their materials of (y − ŷ)²/s² (the maximum-likelihood variance scale), so that c·s(x) is the
    σ of the member's error on domains it did not train on. ``validation_std_quantile_scale_`` c_q = (the 90%
    quantile of |y − ŷ|/s there) / z₀.₉₅ is the scale whose ±1.645 c_q·s(x) covers 90% of those errors, whatever
    the shape of their tails (``EnsembleConfig.interval: head_quantile``).

    Order inside a domain: on the same held-out domains, ``validation_within_slope_`` is the least-squares slope of
    the true deviations from each domain's mean on the predicted ones, b = Σ_g Σ_i d̂_i d_i / Σ_g Σ_i d̂_i² (g over
    the held-out element domains, d = y − ȳ_g, d̂ = ŷ − mean_g ŷ): how far the member's order inside a domain it did
    not train on carries (1: fully, 0: not at all).

    With ``training.auxiliary_regression_weight`` w > 0 the loss gains w·mean (aᵀφ(x) + b − y)² over each step's
    episode materials, with a linear readout (a, b) trained alongside θ and discarded afterwards.

    Targets are transformed (``target_transform``: identity or log) and standardised internally; predictions,
    standard deviations and the validation RMSE come back in target units.
    """

    def __init__(self, config: E2TConfig | None = None):
        self.config = config or E2TConfig()
        self.encoder: torch.nn.Module | None = None
        self.target_scaling_ = TargetScaling(self.config.target_transform)
        self.validation_domains_: list[str] = []
        self.validation_rmse_: float | None = None
        self.validation_std_scale_: float | None = None
        self.validation_std_quantile_scale_: float | None = None
        self.validation_within_slope_: float | None = None
        self.history_: TrainingHistory | None = None

    # ---- training -------------------------------------------------------------------------------------
    def fit(self, inputs: MaterialInputs, targets: np.ndarray, domain_keys: list[frozenset[str]], progress: bool = True) -> "E2TRegressor":
        """Meta-train on materials ``inputs`` with ``targets (n,)`` and their ``domain_keys``."""
        targets = np.asarray(targets, dtype=float)
        if len(targets) != len(inputs) or len(domain_keys) != len(inputs):
            raise DataError(f"{len(inputs)} materials but {len(targets)} targets and {len(domain_keys)} domain keys")
        if not np.all(np.isfinite(targets)):
            raise DataError("training targets contain NaN or infinite values")
        cfg = self.config
        self.target_scaling_ = TargetScaling(cfg.target_transform).fit(targets)
        y = self.target_scaling_.scaled(targets)

        self.validation_domains_ = choose_validation_domains(domain_keys, cfg.training.validation_domains, cfg.training.seed)
        held_out = np.array([bool(keys & set(self.validation_domains_)) for keys in domain_keys])
        train_index = np.flatnonzero(~held_out)
        self.history_ = self._train(inputs, y, domain_keys, train_index, cfg.training, progress)
        if self.validation_domains_:
            validation = np.flatnonzero(held_out)
            predicted, head_std = self.predict(subset_inputs(inputs, validation), subset_inputs(inputs, train_index),
                                               targets[train_index], return_std=True)
            errors = np.abs(predicted - targets[validation])
            self.validation_rmse_ = float(np.sqrt(np.mean(errors**2)))
            ratios = errors / np.maximum(head_std, 1e-12)
            self.validation_std_scale_ = float(np.sqrt(np.mean(ratios**2)))
            self.validation_std_quantile_scale_ = float(np.quantile(ratios, 0.9) / Z_90)
            self.validation_within_slope_ = within_domain_slope(predicted, targets[validation],
                                                                [domain_keys[i] for i in validation])
            if cfg.training.refit_on_all:
                # the held-out domains chose the number of steps; now learn from every domain for that long
                refit = cfg.training.model_copy(update={"max_steps": max(self.history_.best_step, cfg.training.validate_every)})
                self._train(inputs, y, domain_keys, np.arange(len(inputs)), refit, progress, validate=False)
        return self

    def _train(self, inputs, y, domain_keys, train_index, training, progress, validate=True) -> TrainingHistory:
        """Fresh encoder, meta-trained on episodes drawn from ``train_index``; validated on the held-out domains."""
        cfg = self.config
        sampler = EpisodeSampler([domain_keys[i] for i in train_index], cfg.episodes, seed=training.seed,
                                 targets=np.asarray(y)[train_index])
        with seeded(training.seed):  # the initial weights
            self.encoder = build_encoder(inputs, cfg.encoder)
            readout = torch.nn.Linear(cfg.encoder.embedding_dim, 1) if training.auxiliary_regression_weight > 0 else None
        trained = torch.nn.ModuleDict({"encoder": self.encoder, "readout": readout}) if readout is not None else self.encoder

        def training_loss() -> torch.Tensor:
            episodes = [sampler.sample() for _ in range(training.episodes_per_step)]
            return self._episode_loss(inputs, y, train_index, episodes, readout, training.auxiliary_regression_weight)

        def validation_loss() -> float:
            return self._validation_mse(inputs, y, domain_keys, train_index)

        use_validation = validate and bool(self.validation_domains_)
        return train_with_early_stopping(trained, training_loss, validation_loss if use_validation else None, training,
                                         description=f"E2T seed {training.seed}" + ("" if validate else " (refit)"), progress=progress)

    def _episode_loss(self, inputs, y, train_index, episodes: list[Episode], readout: torch.nn.Module | None = None,
                      readout_weight: float = 0.0) -> torch.Tensor:
        """Mean query MSE over episodes whose indices point into ``train_index``; ridge head fitted per episode.
        With a ``readout``, plus ``readout_weight`` × its MSE over every material of the episodes."""
        local = np.unique(np.concatenate([np.concatenate([e.support, e.query]) for e in episodes]))
        position = {j: p for p, j in enumerate(local)}
        embeddings = self.encoder(inputs.batch(torch.as_tensor(train_index[local])))
        y_local = y[torch.as_tensor(train_index[local])]
        losses = []
        for e in episodes:
            s = torch.as_tensor([position[j] for j in e.support])
            q = torch.as_tensor([position[j] for j in e.query])
            head = self.fit_ridge_head(embeddings[s], y_local[s])
            losses.append((head.predict(embeddings[q]) - y_local[q]).pow(2).mean())
        loss = torch.stack(losses).mean()
        if readout is not None:
            loss = loss + readout_weight * (readout(embeddings).squeeze(1) - y_local).pow(2).mean()
        return loss

    def fine_tune(self, inputs: MaterialInputs, targets: np.ndarray, domain_keys: list[frozenset[str]], new_index: np.ndarray,
                  config: AdaptationConfig, seed: int = 0, progress: bool = False) -> "E2TRegressor":
        """A copy of this model whose encoder took ``config.finetune_steps`` more steps (the paper's fine-tuning):
        a share ``new_domain_fraction`` of the episodes query half of the newly measured materials ``new_index``
        with everything else as support; the rest are ordinary extrapolative episodes on the older data, so the
        encoder does not forget them. Target scaling and validation results stay those of the trained model."""
        targets = np.asarray(targets, dtype=float)
        if len(targets) != len(inputs) or not np.all(np.isfinite(targets)):
            raise DataError("fine-tuning needs one finite target per material")
        new_index = np.asarray(new_index, dtype=int)
        old_index = np.setdiff1d(np.arange(len(inputs)), new_index)
        tuned = copy.deepcopy(self)
        tuned.encoder = copy.deepcopy(self._require_fitted())
        y = self.target_scaling_.scaled(targets)
        rng = np.random.default_rng(seed)
        old_sampler = EpisodeSampler([domain_keys[i] for i in old_index], self.config.episodes, seed=seed,
                                     targets=np.asarray(y)[old_index])
        everything = np.arange(len(inputs))

        def episode() -> Episode:
            if len(new_index) >= 2 and rng.random() < config.new_domain_fraction:
                order = rng.permutation(new_index)
                query = order[: max(1, len(order) // 2)]
                return Episode(np.setdiff1d(everything, query), query, "new")
            e = old_sampler.sample()
            return Episode(old_index[e.support], old_index[e.query], e.query_domain)

        def training_loss() -> torch.Tensor:
            return tuned._episode_loss(inputs, y, everything, [episode() for _ in range(self.config.training.episodes_per_step)])

        steps = self.config.training.model_copy(update={"max_steps": config.finetune_steps, "learning_rate": config.finetune_learning_rate})
        with seeded(seed):
            train_with_early_stopping(tuned.encoder, training_loss, None, steps, description="fine-tune", progress=progress)
        return tuned

    def _validation_mse(self, inputs, y, domain_keys, train_index) -> float:
        """Mean squared error (standardised units) on each held-out domain, support = all training materials."""
        support = self.embed(inputs, train_index)
        head = self.fit_ridge_head(support, y[train_index])
        errors = []
        for key in self.validation_domains_:
            query = np.flatnonzero([key in keys for keys in domain_keys])
            errors.append((head.predict(self.embed(inputs, query)) - y[query]).pow(2))
        return float(torch.cat(errors).mean())

    # ---- prediction -----------------------------------------------------------------------------------
    def _require_fitted(self) -> torch.nn.Module:
        if self.encoder is None:
            raise RuntimeError("E2TRegressor is not fitted: call fit() or load() first")
        return self.encoder

    def embed(self, inputs: MaterialInputs, index: np.ndarray | None = None) -> torch.Tensor:
        """Embeddings φ(x), shape ``(m, d)``, of materials ``index`` (all when None), without gradients."""
        encoder = self._require_fitted()
        index = np.arange(len(inputs)) if index is None else np.asarray(index)
        encoder.eval()
        with torch.no_grad():
            parts = [encoder(inputs.batch(torch.as_tensor(index[i:i + EMBED_CHUNK]))) for i in range(0, len(index), EMBED_CHUNK)]
        return torch.cat(parts) if parts else torch.zeros(0, self.config.encoder.embedding_dim)

    def fit_head(self, support: MaterialInputs, support_targets: np.ndarray) -> RidgeFit:
        """The ridge head on support set S (standardised targets). New measurements enter S: no retraining."""
        support_targets = np.asarray(support_targets, dtype=float)
        if len(support_targets) != len(support) or len(support) < 2:
            raise DataError(f"support set needs 2+ materials with one target each (got {len(support)} and {len(support_targets)})")
        if not np.all(np.isfinite(support_targets)):
            raise DataError("support targets contain NaN or infinite values")
        return self.fit_ridge_head(self.embed(support), self.target_scaling_.scaled(support_targets))

    def fit_ridge_head(self, support_embeddings: torch.Tensor, support_targets: torch.Tensor) -> RidgeFit:
        """The configured ridge head on support embeddings ``(n, d_emb)`` and standardised targets ``(n,)``. The RBF
        part's random frequencies are drawn from the training seed, so a saved model gets the same ones back."""
        head = self.config.head
        rbf = None
        if head.kernel == "linear_rbf":
            rbf = RandomFrequencies.draw(self.config.encoder.embedding_dim, head.rbf_features, self.config.training.seed)
        return fit_ridge(support_embeddings, support_targets, head.ridge_lambda, rbf)

    def predict(self, query: MaterialInputs, support: MaterialInputs, support_targets: np.ndarray, return_std: bool = False):
        """Predictions ``(m,)`` for the query materials given support set S = (support, support_targets).

        With ``return_std`` also the ridge head's predictive standard deviation ``(m,)``, in target units, as the
        head gives it (``interval_std`` calibrates it).
        """
        head = self.fit_head(support, support_targets)
        embeddings = self.embed(query)
        mean = self.target_scaling_.to_target_units(head.predict(embeddings)).numpy()
        if not return_std:
            return mean
        return mean, self.target_scaling_.std_to_target_units(head.predictive_variance(embeddings).sqrt().numpy(), mean)

    def interval_std(self, query: MaterialInputs, support: MaterialInputs, support_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions ``(m,)`` and their calibrated standard deviations ``(m,)``: c·s(x) (see the class). A member
        without held-out domains (or saved before the factor existed) falls back to its validation RMSE, else s(x)."""
        mean, head_std = self.predict(query, support, support_targets, return_std=True)
        return mean, self.calibrated_std(head_std)

    def calibrated_std(self, head_std: np.ndarray) -> np.ndarray:
        """The head's standard deviations ``(m,)`` (target units) → calibrated ones (``interval_std``)."""
        head_std = np.asarray(head_std, dtype=float)
        if self.validation_std_scale_ is not None:
            return self.validation_std_scale_ * head_std
        if self.validation_rmse_ is not None:
            return np.full_like(head_std, self.validation_rmse_)
        return head_std

    # ---- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Weights, config, input scaling (encoder buffers), target scaling and validation results in one file."""
        encoder = self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({
            "config": self.config.model_dump(mode="json"),
            "state_dict": encoder.state_dict(),
            "target_mean": self.target_scaling_.mean,
            "target_std": self.target_scaling_.std,
            "validation_domains": self.validation_domains_,
            "validation_rmse": self.validation_rmse_,
            "validation_std_scale": self.validation_std_scale_,
            "validation_std_quantile_scale": self.validation_std_quantile_scale_,
            "validation_within_slope": self.validation_within_slope_,
        }, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "E2TRegressor":
        path = Path(path)
        if not path.exists():
            raise DataError(f"no saved model at {path}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(E2TConfig.model_validate(checkpoint["config"]))
        model.encoder = _encoder_from_state(model.config, checkpoint["state_dict"])
        model.target_scaling_ = TargetScaling(model.config.target_transform, checkpoint["target_mean"], checkpoint["target_std"])
        model.validation_domains_ = checkpoint["validation_domains"]
        model.validation_rmse_ = checkpoint["validation_rmse"]
        model.validation_std_scale_ = checkpoint.get("validation_std_scale")  # absent in models saved before it
        model.validation_std_quantile_scale_ = checkpoint.get("validation_std_quantile_scale")
        model.validation_within_slope_ = checkpoint.get("validation_within_slope")
        return model


def within_domain_slope(predicted: np.ndarray, actual: np.ndarray, domain_keys: list[frozenset[str]],
                        min_size: int = 5) -> float | None:
    """The least-squares slope of the actual deviations from each domain's mean on the predicted ones, pooled over
    the domains (``domain_keys``, one per row) with at least ``min_size`` rows: Σ d̂ d / Σ d̂². None without such a
    domain or without any predicted spread."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    keys = np.array(["\t".join(sorted(key)) for key in domain_keys])
    products = squares = 0.0
    for key in np.unique(keys):
        rows = keys == key
        if rows.sum() < min_size:
            continue
        d_hat, d = predicted[rows] - predicted[rows].mean(), actual[rows] - actual[rows].mean()
        products += float(d_hat @ d)
        squares += float(d_hat @ d_hat)
    return products / squares if squares > 0 else None


def _encoder_from_state(config: E2TConfig, state_dict: dict) -> torch.nn.Module:
    """Rebuild an encoder of the right input size from saved weights."""
    if config.encoder.kind == "descriptor_mlp":
        template = DescriptorInputs(torch.zeros(1, state_dict["input_mean"].shape[0]), [])
    else:
        width = state_dict["embed.weight"].shape[1]
        template = CrystalGraphInputs([torch.zeros(1, width)], [torch.zeros(2, 0, dtype=torch.long)], [torch.zeros(0)])
    encoder = build_encoder(template, config.encoder)
    encoder.load_state_dict(state_dict)
    encoder.eval()
    return encoder
