"""Campaign plots from the store: best-so-far against experiments, predictions against measurements, domain coverage;
as PNGs (matplotlib: reports, the CLI) and as plotly.js figure dicts (the dashboard's interactive plots)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    return [(identifier, value) for identifier, value, proposal_item, recorded_at in service.measurement_values(session, campaign)
            if proposal_item is not None or (started is not None and recorded_at.replace(tzinfo=None) >= started)]


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
    ax.set_ylabel(best_so_far_label(campaign))
    ax.set_title(f"{campaign.name}: best so far")
    return fig


def best_so_far_label(campaign: Campaign) -> str:
    return f"best so far ({campaign.unit})" if campaign.objective == "maximise" else "best objective so far"


@dataclass
class ParityPoints:
    """The campaign's measured proposals: ``identifiers``, ``measured`` values and the ``predicted`` mean and
    ``std`` recorded when each was proposed (campaign units), all ``(m,)``."""

    identifiers: list[str]
    measured: np.ndarray
    predicted: np.ndarray
    std: np.ndarray


def parity_points(session: Session, campaign: Campaign) -> ParityPoints:
    items = service.proposal_items(session, campaign, statuses=["measured"])
    values = service.measured_values(session, campaign)
    return ParityPoints([c.identifier for _, c in items], np.array([values.get(c.identifier, np.nan) for _, c in items]),
                        np.array([item.predicted_mean for item, _ in items]),
                        np.array([item.predicted_std for item, _ in items]))


def parity_figure(session: Session, campaign: Campaign):
    points = parity_points(session, campaign)
    fig, ax = plt.subplots(figsize=(4, 4))
    if points.identifiers:
        ax.errorbar(points.measured, points.predicted, yerr=points.std, fmt="o", alpha=0.7)
        lo, hi = parity_range(points)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"measured ({campaign.unit})")
    ax.set_ylabel(f"predicted when proposed ({campaign.unit})")
    ax.set_title("proposals: predicted vs measured")
    return fig


def parity_range(points: ParityPoints) -> tuple[float, float]:
    both = np.concatenate([points.measured, points.predicted])
    return float(np.nanmin(both)), float(np.nanmax(both))


def domain_counts(session: Session, campaign: Campaign) -> tuple[list[str], list[int], list[int]]:
    """The campaign's element domains (sorted), its candidates in each, and how many of those are measured."""
    candidates = service.list_candidates(session, campaign)
    values = service.measured_values(session, campaign)
    domains = sorted({c.element_domain for c in candidates})
    total = {d: 0 for d in domains}
    measured = {d: 0 for d in domains}
    for c in candidates:
        total[c.element_domain] += 1
        measured[c.element_domain] += c.identifier in values
    return domains, [total[d] for d in domains], [measured[d] for d in domains]


def domain_coverage_figure(session: Session, campaign: Campaign):
    domains, total, measured = domain_counts(session, campaign)
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(domains)), 3.5))
    x = np.arange(len(domains))
    ax.bar(x, total, color="lightgrey", label="candidates")
    ax.bar(x, measured, color="tab:blue", label="measured")
    ax.set_xticks(x, domains, rotation=90, fontsize=7)
    ax.legend()
    ax.set_title("domain coverage")
    return fig


CAMPAIGN_FIGURES = {"best_so_far": best_so_far_figure, "parity": parity_figure, "domain_coverage": domain_coverage_figure}


# ---- the same figures for plotly.js (the dashboard's interactive plots) -----------------------------------------
# Plain figure dicts ({"data": [...], "layout": {...}}) that plotly.js draws in the browser; the PNGs above stay for
# reports and the CLI. ``link(identifier)`` gives a candidate's page: each point carries it as ``customdata``, and a
# click on the point opens it.
Link = Callable[[str], str]


def _layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    return {"title": {"text": title}, "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}},
            "margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "height": 360, "hovermode": "closest",
            "showlegend": False, **extra}


def best_so_far_plotly(session: Session, campaign: Campaign, link: Link) -> dict:
    experiments = campaign_experiments(session, campaign)
    values = [v for _, v in experiments]
    curve = best_so_far(values, campaign.objective, campaign.target_low, campaign.target_high)
    number = list(range(1, len(values) + 1))
    scored = score(np.array(values), campaign.objective, campaign.target_low, campaign.target_high) if values else []
    return {"data": [
        {"type": "scatter", "mode": "lines", "x": number, "y": curve.tolist(), "line": {"shape": "hv"},
         "hoverinfo": "skip", "name": "best so far"},
        {"type": "scatter", "mode": "markers", "x": number, "y": [float(v) for v in scored], "name": "experiment",
         "text": [f"#{n} {identifier}: {value:.4g} {campaign.unit}" for n, (identifier, value) in zip(number, experiments)],
         "hovertemplate": "%{text}<extra></extra>", "customdata": [link(i) for i, _ in experiments]}],
        "layout": _layout(f"{campaign.name}: best so far", "experiments", best_so_far_label(campaign),
                          xaxis={"title": {"text": "experiments"}, "tick0": 1, "dtick": max(1, len(values) // 10)})}


def parity_plotly(session: Session, campaign: Campaign, link: Link) -> dict:
    points = parity_points(session, campaign)
    data = [{"type": "scatter", "mode": "markers", "x": points.measured.tolist(), "y": points.predicted.tolist(),
             "error_y": {"type": "data", "array": points.std.tolist(), "visible": True},
             "text": [f"{i}: measured {m:.4g}, predicted {p:.4g} ± {s:.2g} {campaign.unit}"
                      for i, m, p, s in zip(points.identifiers, points.measured, points.predicted, points.std)],
             "hovertemplate": "%{text}<extra></extra>", "customdata": [link(i) for i in points.identifiers]}]
    if points.identifiers:
        lo, hi = parity_range(points)
        data.append({"type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo, hi], "hoverinfo": "skip",
                     "line": {"dash": "dash", "color": "black", "width": 1}})
    return {"data": data, "layout": _layout("proposals: predicted vs measured", f"measured ({campaign.unit})",
                                            f"predicted when proposed ({campaign.unit})")}


def domain_coverage_plotly(session: Session, campaign: Campaign, link: Link) -> dict:
    domains, total, measured = domain_counts(session, campaign)
    return {"data": [
        {"type": "bar", "x": domains, "y": total, "name": "candidates", "marker": {"color": "lightgrey"},
         "hovertemplate": "%{x}: %{y} candidates<extra></extra>"},
        {"type": "bar", "x": domains, "y": measured, "name": "measured", "marker": {"color": "#1f77b4"},
         "hovertemplate": "%{x}: %{y} measured<extra></extra>"}],
        "layout": _layout("domain coverage", "element domain", "candidates", barmode="overlay", showlegend=True)}


INTERACTIVE_FIGURES = {"best_so_far": best_so_far_plotly, "parity": parity_plotly, "domain_coverage": domain_coverage_plotly}


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
