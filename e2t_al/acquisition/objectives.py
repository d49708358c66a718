"""What "better" means for a campaign, as BoTorch MC objectives and as plain scores of measured values."""

from __future__ import annotations

import numpy as np
from botorch.acquisition.objective import GenericMCObjective, MCAcquisitionObjective


def window_distance(y, low: float, high: float):
    """How far y lies outside [low, high]: 0 inside, the distance to the nearer edge outside."""
    return (low - y).clip(min=0) + (y - high).clip(min=0)


def botorch_objective(objective: str, low: float | None = None, high: float | None = None) -> MCAcquisitionObjective | None:
    """``maximise``: identity (None); ``minimise``: −y; ``target_window``: −distance to [low, high], so the
    band gap closest to 1.5 eV is ``low = high = 1.5``."""
    if objective == "maximise":
        return None
    if objective == "minimise":
        return GenericMCObjective(lambda Y, X=None: -Y[..., 0])
    if objective == "target_window":
        if low is None or high is None:
            raise ValueError("target_window needs target_low and target_high")
        return GenericMCObjective(lambda Y, X=None: -window_distance(Y[..., 0], low, high))
    raise ValueError(f"unknown objective {objective!r}")


def score(values: np.ndarray, objective: str, low: float | None = None, high: float | None = None) -> np.ndarray:
    """The same objective on measured values (higher is better), for best-so-far and regret."""
    values = np.asarray(values, dtype=float)
    if objective == "maximise":
        return values
    if objective == "minimise":
        return -values
    return -window_distance(values, low, high)


def parse_objective(text: str) -> tuple[str, float | None, float | None]:
    """``max``/``maximise``, ``min``/``minimise``, ``target:1.5``, or a window ``target:1.2:1.6`` (also written
    ``window:1.2:1.6``) → (objective, low, high)."""
    text = text.strip().lower()
    if text in ("max", "maximise", "maximize"):
        return "maximise", None, None
    if text in ("min", "minimise", "minimize"):
        return "minimise", None, None
    parts = text.split(":")
    try:
        if parts[0] == "target" and len(parts) == 2:
            return "target_window", float(parts[1]), float(parts[1])
        if parts[0] in ("target", "window") and len(parts) == 3 and float(parts[1]) <= float(parts[2]):
            return "target_window", float(parts[1]), float(parts[2])
    except ValueError:
        pass
    raise ValueError(f"objective {text!r}: use max, min, target:VALUE or target:LOW:HIGH (LOW ≤ HIGH)")

