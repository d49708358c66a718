"""Figures the benchmarks write (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from e2t_al.bench.metrics import Z_90, regression_metrics  # noqa: E402

COLOURS = {"e2t": "#9ecae1", "e2t_ensemble": "#08519c", "nn": "#e6550d", "ridge": "#31a354", "oracle": "#756bb1"}


def parity_plot(y_test: np.ndarray, predictions: dict[str, np.ndarray], ensemble_std: np.ndarray,
                oracle: tuple[np.ndarray, np.ndarray], title: str, unit: str, path: Path) -> Path:
    """Left: the held-out domain, every method; the ensemble with its 90% intervals. Right: the oracle on its half."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    every = [y_test, oracle[0], oracle[1], *predictions.values()]
    low, high = min(map(np.min, every)), max(map(np.max, every))
    pad = 0.05 * (high - low)
    for ax in axes:
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", lw=1, ls="--")
        ax.set_xlabel(f"true ({unit})" if unit else "true")
        ax.set_aspect("equal")
    axes[0].set_ylabel(f"predicted ({unit})" if unit else "predicted")
    for method, prediction in predictions.items():
        r2 = regression_metrics(y_test, prediction)["r2"]
        if method == "e2t_ensemble":
            axes[0].errorbar(y_test, prediction, yerr=Z_90 * ensemble_std, fmt="o", ms=4, color=COLOURS[method],
                             ecolor=COLOURS[method], elinewidth=0.6, alpha=0.8, label=f"{method} (R² {r2:.2f}, 90% intervals)", zorder=3)
        else:
            axes[0].scatter(y_test, prediction, s=12, color=COLOURS.get(method), alpha=0.6, label=f"{method} (R² {r2:.2f})")
    axes[0].set_title("held-out domain")
    axes[0].legend(fontsize=8, loc="upper left")
    r2 = regression_metrics(*oracle)["r2"]
    axes[1].scatter(*oracle, s=12, color=COLOURS["oracle"], label=f"oracle (R² {r2:.2f})")
    axes[1].set_title("oracle: trained on part of the domain, tested on the rest")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
