"""``e2t-al bench discovery``: with an element domain unexplored at the start, how many experiments until each
strategy finds that domain's best material?

Every strategy runs the campaign code itself: the store (a copy of one freshly created campaign database per
run), batch acquisition, the instant update as measurements arrive, and the simulated lab that enters each
measured value through the measurement service. Strategies:

- ``e2t-qlogei`` / ``e2t-ucb``: the E2T ensemble (meta-trained once per seed outside the domain) as a BoTorch model;
- ``gp-qlogei`` / ``gp-ucb``: BoTorch ``SingleTaskGP`` on the same descriptors, refitted every batch;
- ``baybe``: BayBE's default recommender on the same descriptors and data (``bench/baybe_baseline.py``);
- ``random``: uniform among the candidates not yet measured.

The lab is noise-free by default, so a GP strategy often sees the same data in several seeds: its fits are
remembered across seeds (``GPFitMemo``; the report counts fits made and reused). With ``workers=2``, BayBE (minutes
per batch) runs every seed in a second process, one thread each, while this one meta-trains E2T and runs the rest.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
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
from e2t_al.acquisition.fit_memo import GPFitMemo  # noqa: E402
from e2t_al.acquisition.models import GP_FIT_ITERATIONS, E2TEnsembleModel, fit_gp, mean_imputed  # noqa: E402
from e2t_al.bench import seed_range  # noqa: E402
from e2t_al.bench.baybe_baseline import BayBEProposer  # noqa: E402
from e2t_al.campaign import create_campaign_from_config, starting_measurements  # noqa: E402
from e2t_al.config import CampaignConfig  # noqa: E402
from e2t_al.data import DataError, MaterialsDataset, load_dataset  # noqa: E402
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
                  objective: Objective, pool: str, json_path: Path | None, console: Console | None = None,
                  workers: int = 1, side_lane: list[str] | None = None, first_seed: int = 0) -> dict:
    """Seeds ``first_seed`` … ``first_seed + seeds − 1``. ``workers`` 2: BayBE runs in a second process beside the
    other strategies (``side_lane`` names other strategies for that process instead; tests use it)."""
    started = time.perf_counter()
    console = console or Console()
    seed_values = seed_range(seeds, first_seed)
    if workers not in (1, 2):
        raise DataError("--workers is 1 (one process) or 2 (BayBE in a second process)")
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

    gp_fits = GPFitMemo()  # one per process: shared by the seeds, the GP strategies and BayBE
    baybe = None
    if "baybe" in strategies:
        try:
            baybe = BayBEProposer(mean_imputed(features), objective, fit_memo=gp_fits)
            console.print(f"BayBE search space built in {baybe.build_seconds:.0f} s (once)")
        except ImportError:
            console.print("[yellow]baybe skipped: BayBE is not installed (pip install -e '.[bench]')[/]")
            strategies = [s for s in strategies if s != "baybe"]
    if side_lane is None:
        side_lane = ["baybe"] if workers == 2 and "baybe" in strategies and len(strategies) > 1 else []
    main_lane = [s for s in strategies if s not in side_lane]

    problem = DiscoveryProblem(template, config, features, dataset, budget, objective)
    board = Scoreboard(strategies, values, dataset.ids, best_id, top_ids, best_score, objective, budget)
    header = {"dataset": config.dataset, "target": config.target, "holdout": holdout, "objective": objective.__dict__,
              "budget": budget, "batch": batch, "pool": pool,
              "best": {"candidate": best_id, "value": float(values[ranked[0]])},
              "baybe_search_space_seconds": baybe.build_seconds if baybe else None,
              "seed_values": seed_values, "second_process": side_lane}
    meta_training_seconds = []  # per seed: the E2T ensemble shared by the e2t-* strategies
    side_fits = {"fitted": 0, "reused": 0}

    def report() -> dict:
        fits = {k: gp_fits.summary()[k] + side_fits[k] for k in side_fits}
        return {**header, "seeds": board.complete_seeds(), "seconds": time.perf_counter() - started,
                "e2t_meta_training_seconds": meta_training_seconds, "gp_fits": fits, "strategies": board.results,
                "enhancement_factor": enhancement_factors(board.results, budget)}

    def save() -> None:  # after every seed: a run stopped early keeps the seeds it finished
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report(), indent=2))

    side = SideLane(problem, side_lane, seed_values) if side_lane else None
    threads = torch.get_num_threads()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=seeds * len(strategies))

        def take(strategy: str, seed: int, order: list[str], seconds: float, where: str = "") -> None:
            board.add(strategy, order, seconds)
            bar.console.print(f"seed {seed}: {strategy} found the best at experiment "
                              f"{board.results[strategy]['experiments_to_best'][-1] or '-'}{where} "
                              f"({(time.perf_counter() - started) / 60:.1f} min so far)")
            bar.advance(task)

        try:
            if side is not None:
                torch.set_num_threads(1)  # one core each while the second process runs
                side.start()
            for seed in seed_values:
                ensemble = None
                if any(STRATEGIES[s][0] == "e2t" for s in main_lane):
                    bar.update(task, description=f"seed {seed}: meta-training E2T outside {holdout}")
                    measured, clock = state.measured, time.perf_counter()
                    ensemble = E2TEnsemble(config.ensemble, base_seed=seed).fit(
                        DescriptorInputs(torch.as_tensor(features[measured], dtype=torch.float32), []),
                        state.measured_value[measured], [k for k, m in zip(loop.domain_keys(state), measured) if m],
                        progress=False)
                    meta_training_seconds.append(time.perf_counter() - clock)
                for strategy in main_lane:
                    bar.update(task, description=f"seed {seed}: {strategy}")
                    take(strategy, seed, *run_once(problem, strategy, seed, ensemble, baybe, gp_fits))
                    for finished in side.collect() if side else []:
                        take(*finished, where=" (second process)")
                save()
            if side is not None:
                bar.update(task, description=f"waiting for {', '.join(side_lane)} in the second process")
                while not side.done:
                    for finished in side.collect(wait=True):
                        take(*finished, where=" (second process)")
                        save()
                side_fits = side.fits
                save()
        finally:
            torch.set_num_threads(threads)
            if side is not None:
                side.stop()
    shutil.rmtree(work, ignore_errors=True)
    final = report()
    console.print(discovery_table(final))
    console.print(f"{final['seeds']} seeds in {final['seconds'] / 60:.1f} min"
                  + (f"; {', '.join(side_lane)} ran in a second process" if side_lane else ""))
    if final["gp_fits"]["fitted"] + final["gp_fits"]["reused"]:
        console.print(f"GP fits (gp-*, baybe): {final['gp_fits']['fitted']} made, {final['gp_fits']['reused']} reused "
                      f"from an identical earlier step")
    if json_path is not None:
        console.print(f"wrote {json_path} and {regret_plot(final, json_path.with_suffix('.png'))}")
    return final


@dataclass
class DiscoveryProblem:
    """What every run of one benchmark shares; picklable, so the second process gets the same problem."""

    template: Path  # the freshly created campaign database that each run copies
    config: CampaignConfig
    features: np.ndarray  # (n, d) descriptors of the campaign's candidates
    dataset: MaterialsDataset  # the simulated lab's reference values
    budget: int
    objective: Objective


def run_once(problem: DiscoveryProblem, strategy: str, seed: int, ensemble: E2TEnsemble | None,
             baybe: BayBEProposer | None, gp_fits: GPFitMemo) -> tuple[list[str], float]:
    """One strategy's campaign on a copy of the template database: (candidates in the order measured, seconds)."""
    database = problem.template.with_name(f"{strategy}-{seed}.sqlite")
    shutil.copy(problem.template, database)
    clock = time.perf_counter()
    try:
        order = run_strategy(strategy, database, problem.config, problem.features, problem.dataset, problem.budget,
                             problem.objective, seed, ensemble, baybe, gp_fits)
    finally:
        database.unlink()
    return order, time.perf_counter() - clock


class Scoreboard:
    """Per strategy and seed (in seed order): experiments until the best, top-5 recall after n, regret curve."""

    def __init__(self, strategies: list[str], values: np.ndarray, ids: np.ndarray, best_id: str, top_ids: set[str],
                 best_score: float, objective: Objective, budget: int):
        self.results = {s: {"experiments_to_best": [], **{f"top5_recall@{n}": [] for n in RECALL_AT if n <= budget},
                            "regret_curve": [], "seconds": []} for s in strategies}
        self.value_of = dict(zip(ids.tolist(), values.tolist()))
        self.best_id, self.top_ids, self.best_score = best_id, top_ids, best_score
        self.objective, self.budget = objective, budget

    def add(self, strategy: str, order: list[str], seconds: float) -> None:
        record = self.results[strategy]
        record["seconds"].append(seconds)
        record["experiments_to_best"].append(order.index(self.best_id) + 1 if self.best_id in order else None)
        for n in RECALL_AT:
            if n <= self.budget:
                record[f"top5_recall@{n}"].append(len(self.top_ids & set(order[:n])) / TOP_K)
        found = self.objective.score(np.array([self.value_of[i] for i in order]))
        record["regret_curve"].append((self.best_score - np.maximum.accumulate(found)).round(6).tolist())

    def complete_seeds(self) -> int:
        return min(len(record["experiments_to_best"]) for record in self.results.values())


class SideLane:
    """``strategies`` for every seed in a second process with one thread (BayBE, whose GP fits take minutes, beside
    the E2T meta-training). Finished runs come back in seed order through a queue; a failure there is raised here."""

    def __init__(self, problem: DiscoveryProblem, strategies: list[str], seeds: list[int]):
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
        self.outbox = context.Queue()
        self.process = context.Process(target=side_lane_runs, args=(problem, strategies, seeds, self.outbox),
                                       daemon=True, name="e2t-discovery-side-lane")
        self.done, self.fits = False, {"fitted": 0, "reused": 0}

    def start(self) -> None:
        self.process.start()

    def collect(self, wait: bool = False) -> list[tuple[str, int, list[str], float]]:
        """The runs finished since the last call; with ``wait``, block until at least one more message."""
        finished = []
        while not self.done:
            try:
                message = self.outbox.get(timeout=5.0) if wait and not finished else self.outbox.get_nowait()
            except queue.Empty:
                if wait and not finished and not self.process.is_alive():
                    raise RuntimeError(f"the second process stopped (exit code {self.process.exitcode}) "
                                       f"before its runs were done") from None
                if wait and not finished:
                    continue
                break
            kind, *payload = message
            if kind == "error":
                raise RuntimeError(f"the second process failed:\n{payload[0]}")
            if kind == "done":
                self.done, self.fits = True, payload[0]
            else:
                finished.append(tuple(payload))
        return finished

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def side_lane_runs(problem: DiscoveryProblem, strategies: list[str], seeds: list[int], outbox) -> None:
    """The second process: ("run", strategy, seed, order, seconds) per run, then ("done", GP fits), or ("error", …)."""
    torch.set_num_threads(1)
    try:
        gp_fits = GPFitMemo()
        baybe = (BayBEProposer(mean_imputed(problem.features), problem.objective, fit_memo=gp_fits)
                 if "baybe" in strategies else None)
        for seed in seeds:
            for strategy in strategies:
                outbox.put(("run", strategy, seed, *run_once(problem, strategy, seed, None, baybe, gp_fits)))
        outbox.put(("done", gp_fits.summary()))
    except BaseException:  # noqa: BLE001 - reported to the main process, which raises it
        outbox.put(("error", traceback.format_exc()))


def run_strategy(strategy: str, database: Path, config: CampaignConfig, features: np.ndarray, dataset, budget: int,
                 objective: Objective, seed: int, ensemble: E2TEnsemble | None, baybe: BayBEProposer | None,
                 gp_fits: GPFitMemo | None = None) -> list[str]:
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
                    model = gp = fit_gp(pool[measured], torch.as_tensor(y), warm_start=gp, memo=gp_fits,
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
