"""``e2t-al bench discovery``: with an element domain unexplored at the start, how many experiments until each
strategy finds that domain's best material?

Every strategy runs the campaign code itself: the store (a copy of one freshly created campaign database per
run), batch acquisition, the instant update as measurements arrive, and the simulated lab that enters each
measured value through the measurement service. Strategies:

- ``e2t-qlogei`` / ``e2t-ucb``: the E2T ensemble (meta-trained once per seed outside the domain) as a BoTorch model;
- ``gp-qlogei`` / ``gp-ucb``: BoTorch ``SingleTaskGP`` on the same descriptors, refitted every batch;
- ``baybe``: BayBE's default recommender on the same descriptors and data (``bench/baybe_baseline.py``);
- ``random``: uniform among the candidates not yet measured.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from db import service  # noqa: E402
from db.engine import make_engine, session_scope, upgrade  # noqa: E402
from e2t_al import loop  # noqa: E402
from e2t_al.acquisition.batch import Objective, propose_batch  # noqa: E402
from e2t_al.acquisition.models import GP_FIT_ITERATIONS, E2TEnsembleModel, fit_gp, mean_imputed  # noqa: E402
from e2t_al.bench.baybe_baseline import BayBEProposer  # noqa: E402
from e2t_al.campaign import create_campaign_from_config, starting_measurements  # noqa: E402
from e2t_al.config import CampaignConfig  # noqa: E402
from e2t_al.data import DataError, load_dataset  # noqa: E402
from e2t_al.model.ensemble import E2TEnsemble  # noqa: E402
from e2t_al.model.inputs import DescriptorInputs  # noqa: E402
from e2t_al.reports import campaign_experiments  # noqa: E402
from e2t_al.simulated_lab import SimulatedLab  # noqa: E402

STRATEGIES = {"e2t-qlogei": ("e2t", "qlogei"), "e2t-ucb": ("e2t", "qucb"), "gp-qlogei": ("gp", "qlogei"),
              "gp-ucb": ("gp", "qucb"), "baybe": ("baybe", None), "random": ("random", None)}
RECALL_AT = (10, 20, 40)
GP_REFIT_ITERATIONS = 20  # L-BFGS steps of a warm-started refit
TOP_K = 5


def run_discovery(config: CampaignConfig, holdout: str, budget: int, batch: int, seeds: int, strategies: list[str],
                  objective: Objective, pool: str, json_path: Path | None, console: Console | None = None) -> dict:
    console = console or Console()
    if seeds < 1:
        raise DataError("--seeds must be at least 1")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise DataError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    dataset = load_dataset(config.dataset, config.data_dir)
    if pool == "holdout":
        dataset = dataset.labelled(config.target)
    elif pool != "all-unmeasured":
        raise DataError("--pool is holdout or all-unmeasured")
    work = Path(tempfile.mkdtemp(prefix="e2t-discovery-"))
    config = config.model_copy(update={
        "name": "discovery", "unexplored_domains": [holdout], "objective": objective.kind, "target_low": objective.low,
        "target_high": objective.high, "artifacts_dir": work, "valid_min": None, "valid_max": None})
    config.acquisition.batch_size = batch
    template = work / "template.sqlite"
    upgrade(f"sqlite:///{template}")
    engine = make_engine(f"sqlite:///{template}")
    with session_scope(engine) as session:
        create_campaign_from_config(session, config, dataset)
    with session_scope(engine) as session:
        state = loop.read_state(session, config.name)
    engine.dispose()
    features = loop.pool_features(state, progress=True)

    values = dataset.target(config.target)
    start = starting_measurements(dataset, config)
    in_pool = np.setdiff1d(np.flatnonzero(np.isfinite(values)), start)
    ranked = in_pool[np.argsort(-objective.score(values[in_pool]), kind="stable")]
    best_id, top_ids = str(dataset.ids[ranked[0]]), {str(dataset.ids[i]) for i in ranked[:TOP_K]}
    best_score = float(objective.score(values[ranked[:1]])[0])
    console.print(f"{config.dataset} {holdout}: {len(start)} measured at the start, pool of {int((~state.measured).sum())}; "
                  f"best {best_id} = {values[ranked[0]]:.3f}; budget {budget} in batches of {batch}")

    baybe = None
    if "baybe" in strategies:
        try:
            baybe = BayBEProposer(mean_imputed(features), objective)
            console.print(f"BayBE search space built in {baybe.build_seconds:.0f} s (once)")
        except ImportError:
            console.print("[yellow]baybe skipped: BayBE is not installed (pip install -e '.[bench]')[/]")
            strategies = [s for s in strategies if s != "baybe"]

    header = {"dataset": config.dataset, "target": config.target, "holdout": holdout, "objective": objective.__dict__,
              "budget": budget, "batch": batch, "pool": pool,
              "best": {"candidate": best_id, "value": float(values[ranked[0]])},
              "baybe_search_space_seconds": baybe.build_seconds if baybe else None}
    results = {s: {"experiments_to_best": [], **{f"top5_recall@{n}": [] for n in RECALL_AT if n <= budget},
                   "regret_curve": [], "seconds": []} for s in strategies}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=seeds * len(strategies))
        for seed in range(seeds):
            ensemble = None
            if any(STRATEGIES[s][0] == "e2t" for s in strategies):
                bar.update(task, description=f"seed {seed + 1}: meta-training E2T outside {holdout}")
                measured = state.measured
                ensemble = E2TEnsemble(config.ensemble, base_seed=seed).fit(
                    DescriptorInputs(torch.as_tensor(features[measured], dtype=torch.float32), []),
                    state.measured_value[measured], [k for k, m in zip(loop.domain_keys(state), measured) if m], progress=False)
            for strategy in strategies:
                bar.update(task, description=f"seed {seed + 1}: {strategy}")
                run_db = work / f"{strategy}-{seed}.sqlite"
                shutil.copy(template, run_db)
                clock = time.perf_counter()
                order = run_strategy(strategy, run_db, config, features, dataset, budget, objective, seed, ensemble, baybe)
                run_db.unlink()
                record = results[strategy]
                record["seconds"].append(time.perf_counter() - clock)
                record["experiments_to_best"].append(order.index(best_id) + 1 if best_id in order else None)
                for n in RECALL_AT:
                    if n <= budget:
                        record[f"top5_recall@{n}"].append(len(top_ids & set(order[:n])) / TOP_K)
                found = objective.score(np.array([values[list(dataset.ids).index(i)] for i in order]))
                record["regret_curve"].append((best_score - np.maximum.accumulate(found)).round(6).tolist())
                bar.advance(task)
            report = {**header, "seeds": seed + 1, "strategies": results,
                      "enhancement_factor": enhancement_factors(results, budget)}
            if json_path is not None:  # after every seed: a run stopped early keeps the seeds it finished
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    console.print(discovery_table(report))
    if json_path is not None:
        console.print(f"wrote {json_path} and {regret_plot(report, json_path.with_suffix('.png'))}")
    return report


def run_strategy(strategy: str, database: Path, config: CampaignConfig, features: np.ndarray, dataset, budget: int,
                 objective: Objective, seed: int, ensemble: E2TEnsemble | None, baybe: BayBEProposer | None) -> list[str]:
    """One campaign run: propose → record → approve → simulated measurement, until ``budget`` experiments."""
    surrogate, function = STRATEGIES[strategy]
    acquisition = config.acquisition.model_copy(update={"function": function or "qlogei"})
    engine = make_engine(f"sqlite:///{database}")
    lab = SimulatedLab(dataset, config.target, config.lab_noise, seed=seed)
    rng = np.random.default_rng(seed)
    gp = None
    try:
        for _ in range(int(np.ceil(budget / acquisition.batch_size))):
            with session_scope(engine) as session:
                state = loop.read_state(session, config.name)
                done = len(campaign_experiments(session, service.get_campaign(session, config.name)))
            if done >= budget or state.measured.all():
                break
            acquisition.batch_size = min(config.acquisition.batch_size, budget - done)
            measured, y = state.measured, state.measured_value[state.measured]
            allowed = np.flatnonzero(~measured & ~state.pending)
            if surrogate == "random":
                chosen = rng.choice(allowed, size=min(acquisition.batch_size, len(allowed)), replace=False)
            elif surrogate == "baybe":
                chosen = baybe.propose(measured, y, acquisition.batch_size, seed=seed)
            else:
                if surrogate == "e2t":
                    model = E2TEnsembleModel(ensemble, torch.as_tensor(features[measured]), torch.as_tensor(y))
                    pool = torch.as_tensor(features)
                else:  # refitted every batch, starting from the previous batch's hyper-parameters
                    pool = torch.as_tensor(mean_imputed(features))
                    model = gp = fit_gp(pool[measured], torch.as_tensor(y), warm_start=gp,
                                        max_iterations=GP_FIT_ITERATIONS if gp is None else GP_REFIT_ITERATIONS)
                chosen = propose_batch(model, pool, measured, y, acquisition, objective,
                                       pending=state.pending, domains=state.domains).indices
            items = [service.ProposedCandidate(int(state.candidate_ids[i]), 0.0, 0.0, 0.0, 0.0) for i in chosen]
            with session_scope(engine) as session:
                campaign = service.get_campaign(session, config.name)
                service.record_proposal(session, campaign, items, strategy)
                service.approve_all(session, campaign, user="discovery-bench")
            with session_scope(engine) as session:
                lab.measure_approved(session, service.get_campaign(session, config.name))
        with session_scope(engine) as session:
            return [identifier for identifier, _ in campaign_experiments(session, service.get_campaign(session, config.name))][:budget]
    finally:
        engine.dispose()


def enhancement_factors(results: dict, budget: int) -> dict:
    """Rohr et al. (Chem. Sci. 2020) enhancement factor: a strategy's mean top-5 recall after n experiments
    divided by random's; None where random found none of the top 5."""
    if "random" not in results:
        return {}
    factors = {}
    for name, record in results.items():
        factors[name] = {}
        for n in RECALL_AT:
            if n <= budget:
                base = float(np.mean(results["random"][f"top5_recall@{n}"]))
                factors[name][f"@{n}"] = float(np.mean(record[f"top5_recall@{n}"])) / base if base > 0 else None
    return factors


def median_experiments(values: list) -> str:
    found = sorted(v for v in values if v is not None)
    missing = len(values) - len(found)
    # a run that never found the best counts as "after the budget": above every run that did
    ranked = found + [float("inf")] * missing
    median = ranked[(len(ranked) - 1) // 2] if ranked else float("nan")
    text = "not found" if median == float("inf") else f"{median:g}"
    return text + (f" ({missing} of {len(values)} not found)" if missing else "")


def discovery_table(report: dict) -> Table:
    table = Table(title=f"{report['dataset']} {report['holdout']}: experiments to find {report['best']['candidate']} "
                        f"(budget {report['budget']}, batch {report['batch']}, {report['seeds']} seeds)")
    for column in ("strategy", "median experiments to best", "top-5 recall @10/@20/@40", "EF @20", "s / run"):
        table.add_column(column)
    for name, record in report["strategies"].items():
        recalls = "/".join(f"{np.mean(record[k]):.2f}" for k in record if k.startswith("top5_recall"))
        factor = report["enhancement_factor"].get(name, {}).get("@20")
        table.add_row(name, median_experiments(record["experiments_to_best"]), recalls,
                      "-" if factor is None else f"{factor:.2f}", f"{np.mean(record['seconds']):.0f}")
    return table


def regret_plot(report: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, record in report["strategies"].items():
        curves = np.array(record["regret_curve"], dtype=float)
        x = np.arange(1, curves.shape[1] + 1)
        ax.plot(x, np.median(curves, 0), label=name)
        ax.fill_between(x, np.percentile(curves, 25, 0), np.percentile(curves, 75, 0), alpha=0.2)
    ax.set_xlabel("experiments")
    ax.set_ylabel("simple regret (best possible − best found)")
    ax.set_title(f"{report['dataset']} {report['holdout']}: median and quartiles over {report['seeds']} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
