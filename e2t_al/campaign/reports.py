"""Campaign plots from the store: best-so-far against experiments, predictions against measurements, domain coverage."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["text.parse_math"] = False  # candidate names and domains are user text: drawn as typed, never as mathtext
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sqlmodel import Session  # noqa: E402

from db import service  # noqa: E402
from db.tables import Campaign  # noqa: E402
from e2t_al.acquisition.objectives import score  # noqa: E402


def campaign_experiments(session: Session, campaign: Campaign) -> list[tuple[str, float]]:
    """(candidate, value) of the campaign's experiments in the order measured: measurements of its proposals, and
    unplanned ones entered once the first batch was proposed. Not the starting data, never prior knowledge."""
    batches = service.proposal_batches(session, campaign)
    started = batches[0].created_at.replace(tzinfo=None) if batches else None
    return [(identifier, m.value_in_campaign_unit) for m, identifier in service.list_measurements(session, campaign)
            if m.proposal_item_id is not None or (started is not None and m.recorded_at.replace(tzinfo=None) >= started)]


def best_so_far(values: list[float], objective: str, low: float | None, high: float | None) -> np.ndarray:
    return np.maximum.accumulate(score(np.array(values), objective, low, high)) if values else np.array([])


def campaign_plots(session: Session, campaign: Campaign, folder: Path) -> list[Path]:
    """The three campaign plots as PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [_save(figure(session, campaign), folder / f"{name}.png") for name, figure in CAMPAIGN_FIGURES.items()]


def best_so_far_figure(session: Session, campaign: Campaign):
    experiments = campaign_experiments(session, campaign)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    curve = best_so_far([v for _, v in experiments], campaign.objective, campaign.target_low, campaign.target_high)
    ax.step(np.arange(1, len(curve) + 1), curve, where="post")
    ax.set_xlabel("experiments")
    ax.set_ylabel(f"best so far ({campaign.unit})" if campaign.objective == "maximise" else "best objective so far")
    ax.set_title(f"{campaign.name}: best so far")
    return fig


def parity_figure(session: Session, campaign: Campaign):
    measured_items = service.proposal_items(session, campaign, statuses=["measured"])
    values = service.measured_values(session, campaign)
    fig, ax = plt.subplots(figsize=(4, 4))
    if measured_items:
        predicted = np.array([item.predicted_mean for item, _ in measured_items])
        std = np.array([item.predicted_std for item, _ in measured_items])
        observed = np.array([values.get(c.identifier, np.nan) for _, c in measured_items])
        ax.errorbar(observed, predicted, yerr=std, fmt="o", alpha=0.7)
        lo, hi = np.nanmin([observed.min(), predicted.min()]), np.nanmax([observed.max(), predicted.max()])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"measured ({campaign.unit})")
    ax.set_ylabel(f"predicted when proposed ({campaign.unit})")
    ax.set_title("proposals: predicted vs measured")
    return fig


def domain_coverage_figure(session: Session, campaign: Campaign):
    candidates = service.list_candidates(session, campaign)
    values = service.measured_values(session, campaign)
    domains = sorted({c.element_domain for c in candidates})
    total = {d: 0 for d in domains}
    measured = {d: 0 for d in domains}
    for c in candidates:
        total[c.element_domain] += 1
        measured[c.element_domain] += c.identifier in values
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(domains)), 3.5))
    x = np.arange(len(domains))
    ax.bar(x, [total[d] for d in domains], color="lightgrey", label="candidates")
    ax.bar(x, [measured[d] for d in domains], color="tab:blue", label="measured")
    ax.set_xticks(x, domains, rotation=90, fontsize=7)
    ax.legend()
    ax.set_title("domain coverage")
    return fig


CAMPAIGN_FIGURES = {"best_so_far": best_so_far_figure, "parity": parity_figure, "domain_coverage": domain_coverage_figure}


def png_bytes(fig) -> bytes:
    """A figure as PNG bytes (closed afterwards), for serving without a file."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _save(fig, path: Path) -> Path:
    path.write_bytes(png_bytes(fig))
    return path
