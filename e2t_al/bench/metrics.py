"""Regression and calibration metrics."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from e2t_al.model.e2t import Z_90  # the interval the members' scales are set for, and what coverage scores


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R² (1 − SS_res/SS_tot, about the test mean), RMSE and MAE; and what discovery needs, which R² does not
    measure: Spearman's ρ of the predicted order, and ``best_rank``, where the highest true value lands when the
    predictions are sorted from the highest (1: first)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    residual = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    return {
        "r2": 1.0 - float(np.sum(residual**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "spearman": float("nan") if constant else float(spearmanr(y_true, y_pred).statistic),
        "best_rank": int(1 + np.sum(y_pred > y_pred[int(np.argmax(y_true))])),
    }


def calibration_metrics(y_true: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """Share of values inside the central 90% Gaussian interval, and the mean Gaussian negative log-likelihood."""
    y_true, mean, std = (np.asarray(a, float) for a in (y_true, mean, std))
    std = np.maximum(std, 1e-9)
    z = (y_true - mean) / std
    return {
        "coverage_90": float(np.mean(np.abs(z) <= Z_90)),
        "nll": float(np.mean(0.5 * z**2 + np.log(std) + 0.5 * np.log(2 * np.pi))),
    }
