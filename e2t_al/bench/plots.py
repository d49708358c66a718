"""Figures the benchmarks write (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from e2t_al.bench.metrics import Z_90, regression_metrics  # noqa: E402

COLOURS = {"e2t": "#9ecae1", "e2t_ensemble": "#08519c", "nn": "#fdae6b", "nn_ensemble": "#e6550d", "nn_ridge": "#a63603",
           "ridge": "#31a354", "gp": "#636363", "oracle": "#756bb1"}
R2_FLOOR = -1.0  # per-domain plot: R² below this is drawn at the floor (marked), so one failure does not squash the rest


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


def domain_r2_plot(report: dict, path: Path) -> Path:
    """Leave-one-domain-out: each method's mean R² per held-out domain, the domains ordered by ``level_gap`` (how far
    their mean lies outside the others); values below ``R2_FLOOR`` drawn at it with an open marker."""
    domains = sorted(report["domains"], key=lambda d: report["domains"][d]["level_gap"])
    x = np.arange(len(domains))
    fig, ax = plt.subplots(figsize=(max(7, 0.7 * len(domains) + 3), 4.8))
    for method in report["methods"]:
        r2 = np.array([np.mean(report["domains"][d]["methods"][method]["r2"]) for d in domains])
        clipped = r2 < R2_FLOOR
        line = ax.plot(x, np.maximum(r2, R2_FLOOR), marker="o", ms=5, lw=2.2 if method == "e2t_ensemble" else 1,
                       color=COLOURS.get(method), label=method, ls="--" if method == "oracle" else "-")[0]
        ax.scatter(x[clipped], np.full(clipped.sum(), R2_FLOOR), s=60, facecolors="white", edgecolors=line.get_color(), zorder=3)
    ax.axhline(0, color="grey", lw=0.8)
    tuned = set(report.get("tuned_on", []))
    ax.set_xticks(x, [f"{d}{'*' if d in tuned else ''}\n{report['domains'][d]['level_gap']:.2f}" for d in domains], fontsize=8)
    ax.set_xlabel("held-out domain (gap: |its mean − the others' mean| / sd, growing to the right; * settings chosen on it)")
    ax.set_ylabel(f"R² (mean over seeds; open markers: below {R2_FLOOR:g})")
    ax.set_ylim(R2_FLOOR - 0.05, 1.0)
    ax.set_title(f"{report['dataset']} {report['target']}: leave-one-domain-out, seeds {report['seed_values']}")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
