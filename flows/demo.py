"""``e2t-al demo``: a whole simulated campaign on an embedded SQLite database, in Prefect's ephemeral mode."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.engine import session_scope, store_engine, upgrade
from e2t_al.acquisition.objectives import score
from e2t_al.campaign.setup import create_campaign_from_config
from e2t_al.config import CampaignConfig
from e2t_al.data import load_dataset
from e2t_al.campaign.simulated_lab import SimulatedLab


@dataclass
class DemoSummary:
    experiments: int
    best_found: float
    best_found_candidate: str
    best_possible: float
    best_possible_candidate: str
    found_best_at: int | None  # experiment number at which the best possible was measured
    pool_size: int  # the campaign's candidates
    unit: str
    seconds: float
    plots: list[str]

    def line(self) -> str:
        found = f"found it at experiment {self.found_best_at}" if self.found_best_at else "not found"
        return (f"{self.experiments} experiments of a pool of {self.pool_size}: best found {self.best_found:.3f} {self.unit} "
                f"({self.best_found_candidate}), best possible {self.best_possible:.3f} {self.unit} "
                f"({self.best_possible_candidate}), {found}; {self.seconds:.0f} s")


def run_demo(config: CampaignConfig, folder: Path) -> DemoSummary:
    """Fresh database ``folder/demo.sqlite`` (the demo's own scratch file, replaced each run), the campaign from
    ``config``, ``config.iterations`` iterations with a simulated lab; returns the summary."""
    from flows.campaign import run_campaign  # Prefect is imported only once its settings are in place (the CLI sets them)
    from flows.deployments import task_runner_for

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "demo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    upgrade(url)
    config = config.model_copy(update={"artifacts_dir": folder})
    dataset = load_dataset(config.dataset, config.data_dir)
    with session_scope(store_engine(url)) as session:
        create_campaign_from_config(session, config, dataset)
    lab = SimulatedLab(dataset, config.target, config.lab_noise)
    results = run_campaign(config.name, lab, config.iterations, url, task_runner=task_runner_for(config))
    return summarise(config, dataset, url, results, time.perf_counter() - started)


def summarise(config: CampaignConfig, dataset, url: str, results: list[dict], seconds: float) -> DemoSummary:
    """What the campaign found among its own candidates, against the best of them (the data set's values)."""
    from db import service
    from e2t_al.campaign.reports import campaign_experiments

    reference = dict(zip(dataset.ids.tolist(), dataset.target(config.target).tolist()))
    with session_scope(store_engine(url)) as session:
        campaign = service.get_campaign(session, config.name)
        pool = [c.identifier for c in service.list_candidates(session, campaign)]
        experiments = campaign_experiments(session, campaign)
    labelled = [i for i in pool if np.isfinite(reference.get(i, np.nan))]
    scores = score(np.array([reference[i] for i in labelled]), config.objective, config.target_low, config.target_high)
    best = labelled[int(np.argmax(scores))]
    measured = [v for _, v in experiments]
    found = int(np.argmax(score(np.array(measured), config.objective, config.target_low, config.target_high))) if measured else None
    hit = next((k + 1 for k, (identifier, _) in enumerate(experiments) if identifier == best), None)
    return DemoSummary(
        experiments=len(experiments), best_found=measured[found] if measured else float("nan"),
        best_found_candidate=experiments[found][0] if measured else "-", best_possible=float(reference[best]),
        best_possible_candidate=best, found_best_at=hit, pool_size=len(pool),
        unit=dataset.units.get(config.target, config.unit), seconds=seconds,
        plots=results[-1].get("plots", []) if results else [])
