"""``e2t-al bench discovery``: with one or more element domains unexplored at the start (the campaign's scope),
how many batches and experiments until each strategy finds the scope's best material?

Every strategy runs the campaign code itself: the store (a copy of one freshly created campaign database per
run), batch acquisition, the instant update as measurements arrive, and the simulated lab that enters each
measured value through the measurement service. Strategies:

- ``e2t-*``: the E2T ensemble (meta-trained once per seed outside the scope) as a BoTorch model: its members as
  the posterior's samples (``e2t-qlogei``, ``e2t-ucb``), a moment-matched Gaussian (``e2t-gauss-*``), or Thompson
  sampling from it (``e2t-thompson``); ``e2t-gp-*``: the E2T-informed GP (``acquisition/e2t_gp.py``);
  ``e2t``: the default, whatever the config's ``acquisition`` names (the report records what it resolved to);
- ``gp-qlogei`` / ``gp-ucb``: BoTorch ``SingleTaskGP`` on the same descriptors, hyper-parameters refitted every
  ``acquisition.gp_refit_every`` batches (windows: ``window_gp_refit_every``) and otherwise only conditioned on
  the new data;
- ``baybe``: BayBE's default recommender on the same descriptors and data (``bench/baybe_baseline.py``);
- ``baybe-transfer``: BayBE's transfer learning, the source domains as tasks and the scope as the active target task,
  given at most ``SOURCE_PER_TASK`` (30) measured rows of each source domain (its multi-task GP on all of them took
  about an hour per recommendation); the report records the cap;
- ``random``: uniform among the candidates not yet measured.

Every strategy measures improvement against the best measured value in the scope (``campaign_incumbent``), except
BayBE, whose recommender takes the best of all the data it is given. Scenario options: several hold-out domains
pooled, a seeded share of the other domains measured at the start (``source_fraction``), lab noise (success is
judged on the true values), and target windows (the figure there is the number of in-window materials found;
``e2t-hit`` and ``gp-hit`` fill a window's batch by the probability of a hit instead of qLogEI).

The lab is noise-free by default, so a GP strategy often sees the same data in several seeds: its fits are
remembered across seeds (``GPFitMemo``; the report counts fits made and reused). With ``workers=2``, BayBE (minutes
per batch) runs every seed in a second process, one thread each, while this one meta-trains E2T and runs the rest.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import queue
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
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
from e2t_al.campaign import loop  # noqa: E402
from e2t_al.acquisition.batch import Objective, propose_batch  # noqa: E402
from e2t_al.acquisition.fit_memo import GPFitMemo  # noqa: E402
from e2t_al.acquisition.models import fit_gp, mean_imputed  # noqa: E402
from e2t_al.acquisition.surrogates import e2t_surrogate, gp_schedule  # noqa: E402
from e2t_al.bench import environment, seed_range  # noqa: E402
from e2t_al.bench.baybe_baseline import SOURCE_PER_TASK, TARGET_TASK, BayBEProposer, BayBETransferProposer  # noqa: E402
from e2t_al.campaign.setup import create_campaign_from_config, in_domains  # noqa: E402
from e2t_al.campaign.state import campaign_scope, domain_keys, read_state  # noqa: E402
from e2t_al.config import AcquisitionConfig, CampaignConfig, load_config  # noqa: E402
from e2t_al.data import DataError, MaterialsDataset, load_dataset  # noqa: E402
from e2t_al.data.paths import PROJECT_ROOT  # noqa: E402
from e2t_al.model.ensemble import E2TEnsemble  # noqa: E402
from e2t_al.model.inputs import DescriptorInputs  # noqa: E402
from e2t_al.campaign.reports import campaign_experiments  # noqa: E402
from e2t_al.campaign.simulated_lab import SimulatedLab  # noqa: E402

# strategy → (surrogate family, acquisition settings it sets); "e2t" resolves to the config's own acquisition.
# Each family's strategies are its base settings plus what they change. The GP baseline keeps BoTorch's joint
# (sequential greedy) batches, and qLogEI for target windows too (gp-hit: the hit-probability rule). E2T strategies take
# the config's window_rule (default qLogEI); e2t-hit is the default strategy with the hit-probability rule for windows.
ENSEMBLE = {"surrogate": "e2t", "posterior": "members", "function": "qlogei", "batch_rule": "joint"}
E2T_GP = {"surrogate": "e2t_gp", "function": "qlogei", "batch_rule": "joint", "e2t_gp_learn_offset": True}
NO_DOMAIN_PROBE = {"max_per_unmeasured_domain": None}  # before stop 46: a batch may fill an untested domain
E2T_GP_BELIEVER_KEEP_LEVEL = {**E2T_GP, "batch_rule": "believer", "exploit_places": 1,  # the default of stops 39-42
                              "exploit_rule": "improvement_unlikely", "believer_keeps_domain_level": True,
                              **NO_DOMAIN_PROBE}
E2T_GP_EXPLOIT_2 = {**E2T_GP_BELIEVER_KEEP_LEVEL, "exploit_places": 2}  # the default of stop 43
E2T_GP_EXPLOIT_4 = {**E2T_GP_BELIEVER_KEEP_LEVEL, "exploit_places": 4}  # stop 44: the whole batch of the suite's 4
E2T_GP_EXPLOIT_BATCH = {**E2T_GP_BELIEVER_KEEP_LEVEL, "exploit_places": "batch"}  # stops 44-45: every place, any size
E2T_GP_PROBE = {**E2T_GP_EXPLOIT_BATCH, "max_per_unmeasured_domain": 1}  # the default since stop 46
OLD_BELIEVER = {"believer_keeps_domain_level": False}  # until stop 39: a believed pick shrinks its domain's level
GP = {"function": "qlogei", "batch_rule": "joint", "window_rule": "acquisition",  # BoTorch's standard, windows too
      **NO_DOMAIN_PROBE}
STRATEGIES = {
    "e2t-qlogei": ("e2t", ENSEMBLE),
    "e2t-ucb": ("e2t", {**ENSEMBLE, "function": "qucb"}),
    "e2t-gauss-qlogei": ("e2t", {**ENSEMBLE, "posterior": "gaussian"}),
    "e2t-gauss-ucb": ("e2t", {**ENSEMBLE, "posterior": "gaussian", "function": "qucb"}),
    "e2t-thompson": ("e2t", {"surrogate": "e2t", "posterior": "gaussian", "function": "thompson"}),
    "e2t-gp-qlogei": ("e2t", E2T_GP),
    "e2t-gp-ucb": ("e2t", {**E2T_GP, "function": "qucb"}),
    "e2t-gp-qlogei-marginal": ("e2t", {**E2T_GP, "batch_rule": "marginal"}),
    "e2t-gp-qlogei-no-offset": ("e2t", {**E2T_GP, "e2t_gp_learn_offset": False}),
    "e2t-gp-believer": ("e2t", {**E2T_GP, "batch_rule": "believer", "exploit_places": 0, **OLD_BELIEVER,
                                **NO_DOMAIN_PROBE}),
    "e2t-gp-believer-exploit": ("e2t", {**E2T_GP_BELIEVER_KEEP_LEVEL, **OLD_BELIEVER}),
    "e2t-gp-believer-keep-level": ("e2t", E2T_GP_BELIEVER_KEEP_LEVEL),
    "e2t-gp-keep-level-exploit-2": ("e2t", E2T_GP_EXPLOIT_2),
    "e2t-gp-keep-level-exploit-4": ("e2t", E2T_GP_EXPLOIT_4),
    "e2t-gp-keep-level-exploit-batch": ("e2t", E2T_GP_EXPLOIT_BATCH),
    "e2t-gp-thompson": ("e2t", {"surrogate": "e2t_gp", "function": "thompson"}),
    "e2t-gp-probe-domains": ("e2t", E2T_GP_PROBE),
    "e2t-hit": ("e2t", {**E2T_GP_PROBE, "window_rule": "hit_probability"}),
    "e2t-joint-keep-level": ("e2t", {**E2T_GP_PROBE, "joint_keeps_domain_level": True}),
    "e2t-gp-shrunk-order": ("e2t", {**E2T_GP_PROBE, "e2t_gp_prior": "shrunk_order"}),
    "e2t-gp-embeddings": ("e2t", {**E2T_GP_PROBE, "e2t_gp_kernel_inputs": "embeddings"}),
    "gp-qlogei": ("gp", GP),
    "gp-ucb": ("gp", {**GP, "function": "qucb"}),
    "gp-believer": ("gp", {**GP, "batch_rule": "believer", "exploit_places": 0}),
    "gp-hit": ("gp", {**GP, "window_rule": "hit_probability"}),
    "baybe": ("baybe", {}),
    "baybe-transfer": ("baybe-transfer", {}),
    "random": ("random", {}),
    "e2t": ("e2t", {}),
}
RECALL_AT = (10, 20, 40)


def recall_points(budget: int) -> list[int]:
    """Where recall is reported: 10, 20, 40 below the budget, and the budget itself."""
    return sorted({n for n in RECALL_AT if n < budget} | {budget})


PER_SEED = ("seed_values", "experiments_to_best", "batches_to_best", "found", "recall_curve", "best_so_far",
            "regret_curve", "in_window_hits", "seconds")  # a strategy's lists, one entry per seed
TOP_SHARE = 0.05  # "top-5%" recall: the best 5% of the scope (Liang et al., npj Comput. Mater. 2021)


# acquisition settings that each run sets, or that change speed only
RUN_FIELDS = {"batch_size", "chunk_size", "joint_posterior_max_candidates"}
UNUSED_BY = {"e2t": {"e2t_gp_prior", "e2t_gp_scope_level", "e2t_gp_learn_offset", "e2t_gp_kernel_inputs", "gp_refit_every",
                     "window_gp_refit_every", "gp_max_background", "joint_keeps_domain_level"},
             "e2t_gp": {"posterior"}}  # settings that a surrogate never reads


def discovery_model_config(dataset: str, config: Path | None = None, target: str | None = None,
                           data_dir: Path | None = None) -> CampaignConfig:
    """The campaign config a discovery run's model uses: ``config`` (default ``configs/discovery_<dataset>.yaml``),
    checked to be for ``dataset``, with ``target`` and ``data_dir`` replacing its own where given."""
    config_path = config or PROJECT_ROOT / "configs" / f"discovery_{dataset}.yaml"
    campaign_config = load_config(config_path, CampaignConfig)
    if campaign_config.dataset != dataset:
        raise DataError(f"{config_path} is for data set {campaign_config.dataset!r}, not {dataset!r}")
    return campaign_config.model_copy(update={k: v for k, v in {"target": target, "data_dir": data_dir}.items() if v})


def resolve_e2t(acquisition: AcquisitionConfig) -> str:
    """The ``e2t-*`` strategy that the config's acquisition settings are, or a description of them. Settings that
    the strategy leaves at their defaults but the config changes are named after it (``e2t-gp-believer with
    e2t_gp_prior=candidate``), so a report never hides them."""
    for name, (family, settings) in STRATEGIES.items():
        if family == "e2t" and settings and all(getattr(acquisition, k) == v for k, v in settings.items()):
            return name + changed_settings(acquisition, AcquisitionConfig(**settings))
    described = {k: getattr(acquisition, k) for k in ("surrogate", "posterior", "function", "batch_rule")}
    return "/".join(map(str, described.values())) + changed_settings(acquisition, AcquisitionConfig(**described))


def changed_settings(acquisition: AcquisitionConfig, expected: AcquisitionConfig) -> str:
    """`` with k=v, …`` for the settings of ``acquisition`` that differ from ``expected`` and that its surrogate reads
    (per-run and speed-only settings left out), or ``""``."""
    ignored = RUN_FIELDS | UNUSED_BY[acquisition.surrogate]
    changed = [f"{k}={getattr(acquisition, k)}" for k in AcquisitionConfig.model_fields
               if k not in ignored and getattr(acquisition, k) != getattr(expected, k)]
    return f" with {', '.join(changed)}" if changed else ""


@dataclass(frozen=True)
class Scenario:
    """What a discovery campaign is: its unexplored (scope) domains, objective, start and lab."""

    holdout: tuple[str, ...]
    objective: Objective
    budget: int = 40
    batch: int = 4
    pool: str = "holdout"  # holdout: the unexplored domains' labelled materials; all-unmeasured: also the unlabelled ones
    source_fraction: float = 1.0  # share of the other domains measured at the start (seeded)
    noise: float = 0.0  # the simulated lab's Gaussian noise, target units

    @property
    def name(self) -> str:
        return ",".join(self.holdout)


def run_discovery(config: CampaignConfig, holdout: str | list[str] | Scenario, budget: int = 40, batch: int = 4,
                  seeds: int = 1, strategies: list[str] = ("random",), objective: Objective = Objective(),
                  pool: str = "holdout", json_path: Path | None = None, console: Console | None = None,
                  workers: int = 1, side_lane: list[str] | None = None, first_seed: int = 0,
                  source_fraction: float = 1.0, noise: float = 0.0,
                  on_save: Callable[[dict], None] | None = None) -> dict:
    """Seeds ``first_seed`` … ``first_seed + seeds − 1``. ``holdout``: one domain, a list (pooled), or a whole
    ``Scenario`` (then budget … noise are its). ``workers`` 2: BayBE runs in a second process beside the other
    strategies (``side_lane`` names other strategies for that process instead; tests use it). The report so far is
    written to ``json_path`` and given to ``on_save`` after every seed (the suite merges it into its own report)."""
    started = time.perf_counter()
    console = console or Console()
    scenario = holdout if isinstance(holdout, Scenario) else Scenario(
        tuple([holdout] if isinstance(holdout, str) else holdout), objective, budget, batch, pool, source_fraction, noise)
    budget, batch, objective = scenario.budget, scenario.batch, scenario.objective
    seed_values = seed_range(seeds, first_seed)
    strategies = list(strategies)
    if workers not in (1, 2):
        raise DataError("--workers is 1 (one process) or 2 (BayBE in a second process)")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise DataError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if not 0.0 < scenario.source_fraction <= 1.0:
        raise DataError("--source-fraction must lie in (0, 1]")
    if scenario.noise < 0:
        raise DataError("--noise must be 0 or more")
    if not scenario.holdout:
        raise DataError("--holdout names at least one domain")
    dataset = load_dataset(config.dataset, config.data_dir)
    if scenario.pool == "holdout":
        dataset = dataset.labelled(config.target)
    elif scenario.pool != "all-unmeasured":
        raise DataError("--pool is holdout or all-unmeasured")
    work = Path(tempfile.mkdtemp(prefix="e2t-discovery-"))
    config = config.model_copy(update={
        "name": "discovery", "unit": dataset.units.get(config.target) or config.unit,  # the target's own unit
        "unexplored_domains": list(scenario.holdout), "objective": objective.kind,
        "target_low": objective.low, "target_high": objective.high, "artifacts_dir": work, "valid_min": None,
        "valid_max": None, "lab_noise": scenario.noise})
    config.acquisition.batch_size = batch

    values = dataset.target(config.target)
    start = starting_measurements(dataset, config)
    in_pool = np.setdiff1d(np.flatnonzero(np.isfinite(values)), start)
    if len(in_pool) == 0:
        raise DataError(f"the unexplored domains {list(scenario.holdout)} hold no labelled material")
    template, rows, features = campaign_template(work / "template.sqlite", config, dataset)
    board = Scoreboard(strategies, values, dataset.ids, in_pool, objective, budget, batch)
    console.print(f"{config.dataset} {scenario.name}: {len(start)} measured at the start"
                  + (f" ({scenario.source_fraction:.0%} of them each seed)" if scenario.source_fraction < 1 else "")
                  + f", pool of {len(in_pool)}; best {board.best_id} = {values[board.best_index]:.3f}; "
                  f"budget {budget} in batches of {batch}" + (f"; lab noise σ = {scenario.noise:g}" if scenario.noise else ""))

    problems = {seed: DiscoveryProblem(template, config, features, dataset, budget, objective) for seed in seed_values}
    if scenario.source_fraction < 1:  # each seed its own measured share of the other domains: its own template
        for seed in seed_values:
            keep = np.sort(np.concatenate([in_pool, source_share(start, scenario.source_fraction, seed)]))
            subset = dataset.subset(keep)
            seed_template, seed_rows, _ = campaign_template(work / f"template-{seed}.sqlite", config, subset, with_features=False)
            problems[seed] = DiscoveryProblem(seed_template, config, features[row_positions(rows, seed_rows)], subset,
                                              budget, objective)

    gp_fits = GPFitMemo()  # one per process: shared by the seeds, the GP strategies and BayBE
    baybe, skipped = None, {}
    for name in ("baybe", "baybe-transfer"):  # skipped when BayBE cannot run here, and the report says why
        if name not in strategies:
            continue
        try:
            if importlib.util.find_spec("baybe") is None:
                raise ImportError("baybe")
            if objective.kind == "target_window":
                raise DataError("the baybe strategies support max and min objectives only")
            if name == "baybe":
                baybe = BayBEProposer(mean_imputed(features), objective, fit_memo=gp_fits)
                console.print(f"BayBE search space built in {baybe.build_seconds:.0f} s (once)")
        except (ImportError, DataError) as exc:
            skipped[name] = "BayBE is not installed (pip install -e '.[bench]')" if isinstance(exc, ImportError) else str(exc)
            console.print(f"[yellow]{name} skipped: {skipped[name]}[/]")
            strategies = [s for s in strategies if s != name]
            board.results.pop(name)
    if side_lane is None:
        side_lane = ["baybe"] if workers == 2 and "baybe" in strategies and len(strategies) > 1 else []
    main_lane = [s for s in strategies if s not in side_lane]

    header = {"dataset": config.dataset, "target": config.target, "holdout": scenario.name,
              "holdout_domains": list(scenario.holdout), "objective": objective.__dict__, "budget": budget,
              "batch": batch, "pool": scenario.pool, "pool_size": len(in_pool),
              "source_fraction": scenario.source_fraction, "noise": scenario.noise,
              "best": {"candidate": board.best_id, "value": float(values[board.best_index])},
              "top_share": TOP_SHARE, "top_count": len(board.top_ids),
              "baybe_search_space_seconds": baybe.build_seconds if baybe else None,
              "baybe_transfer_source_per_task": SOURCE_PER_TASK if "baybe-transfer" in strategies else None,
              "seed_values": seed_values, "second_process": side_lane, "skipped": skipped,
              "environments": [environment()]}  # one per environment that ran seeds of the report (suite merges)
    meta_training_seconds = []  # per seed: the E2T ensemble shared by the e2t-* strategies
    side_fits = {"fitted": 0, "reused": 0}

    def report() -> dict:
        fits = {k: gp_fits.summary()[k] + side_fits[k] for k in side_fits}
        results = board.with_derived_metrics()
        if "e2t" in results:
            results["e2t"]["resolved"] = resolve_e2t(config.acquisition)
        return {**header, "seeds": board.complete_seeds(), "seconds": time.perf_counter() - started,
                "e2t_meta_training_seconds": meta_training_seconds, "gp_fits": fits, "strategies": results,
                "enhancement_factor": enhancement_factors(results)}

    def save() -> None:  # after every seed: a run stopped early keeps the seeds it finished
        if json_path is None and on_save is None:
            return
        so_far = report()
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(so_far, indent=2))
        if on_save is not None:
            on_save(so_far)

    side = SideLane({seed: problems[seed] for seed in seed_values}, side_lane) if side_lane else None
    threads = torch.get_num_threads()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=seeds * len(strategies))

        def take(strategy: str, seed: int, order: list[str], seconds: float, where: str = "") -> None:
            board.add(strategy, seed, order, seconds)
            bar.console.print(f"seed {seed}: {strategy} found the best at experiment "
                              f"{board.results[strategy]['experiments_to_best'][-1] if board.results[strategy]['found'][-1] else '-'}"
                              f"{where} ({(time.perf_counter() - started) / 60:.1f} min so far)")
            bar.advance(task)

        try:
            if side is not None:
                torch.set_num_threads(1)  # one core each while the second process runs
                side.start()
            for seed in seed_values:
                problem, ensemble = problems[seed], None
                if any(STRATEGIES[s][0] == "e2t" for s in main_lane):
                    bar.update(task, description=f"seed {seed}: meta-training E2T outside {scenario.name}")
                    clock = time.perf_counter()
                    ensemble = meta_train(problem, seed)
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
        console.print(f"GP fits (gp-*, e2t-gp-*, baybe): {final['gp_fits']['fitted']} made, "
                      f"{final['gp_fits']['reused']} reused from an identical earlier step")
    if json_path is not None:
        console.print(f"wrote {json_path} and {best_so_far_plot(final, json_path.with_suffix('.png'))}")
    return final


def campaign_template(path: Path, config: CampaignConfig, dataset: MaterialsDataset, with_features: bool = True):
    """A freshly created campaign database at ``path`` that every run copies, the identifiers of its rows
    (candidates, then prior materials) and (``with_features``) their descriptors ``(n, d)`` in that order."""
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with session_scope(engine) as session:
            create_campaign_from_config(session, config, dataset)
        with session_scope(engine) as session:
            state = read_state(session, config.name)
    finally:
        engine.dispose()
    return path, state.identifiers, (loop.pool_features(state, progress=True) if with_features else None)


def source_share(start: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded share of the materials measured at the start (at least two, for the E2T head)."""
    rng = np.random.default_rng([seed, 7919])
    return np.sort(rng.choice(start, size=max(2, int(round(fraction * len(start)))), replace=False))


def row_positions(identifiers: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Where each of ``subset``'s identifiers sits in ``identifiers``."""
    position = {identifier: i for i, identifier in enumerate(identifiers.tolist())}
    return np.array([position[identifier] for identifier in subset.tolist()], dtype=int)


def starting_measurements(dataset: MaterialsDataset, config: CampaignConfig) -> np.ndarray:
    """Indices of the prior materials of a bundled campaign: labelled, and outside every unexplored domain."""
    return np.flatnonzero(np.isfinite(dataset.target(config.target)) & ~in_domains(dataset, config.unexplored_domains))


def meta_train(problem: "DiscoveryProblem", seed: int) -> E2TEnsemble:
    """The seed's E2T ensemble, meta-trained on the materials measured at the start of its campaign."""
    engine = make_engine(f"sqlite:///{problem.template}")
    try:
        with session_scope(engine) as session:
            state = read_state(session, problem.config.name)
    finally:
        engine.dispose()
    measured = state.measured
    return E2TEnsemble(problem.config.ensemble, base_seed=seed).fit(
        DescriptorInputs(torch.as_tensor(problem.features[measured], dtype=torch.float32), []),
        state.measured_value[measured], [k for k, m in zip(domain_keys(state), measured) if m], progress=False)


@dataclass
class DiscoveryProblem:
    """What every run of one benchmark seed shares; picklable, so the second process gets the same problem."""

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
    """Per strategy and seed (in seed order): experiments and batches until the scope's best (a run that never finds
    it counts as budget + 1 experiments and batches + 1, with ``found`` false), the top-5% recall curve, in-window
    hits, best-so-far and regret curves. ``with_derived_metrics`` adds recall at 10/20/40, EF, and the acceleration
    factors against random and against ``gp-qlogei``."""

    def __init__(self, strategies: list[str], values: np.ndarray, ids: np.ndarray, in_pool: np.ndarray,
                 objective: Objective, budget: int, batch: int):
        self.results = {s: {key: [] for key in PER_SEED} for s in strategies}
        self.value_of = dict(zip(ids.tolist(), values.tolist()))
        scores = objective.score(values[in_pool])
        order = np.argsort(-scores, kind="stable")
        self.best_index = int(in_pool[order[0]])
        self.best_id, self.best_score = str(ids[self.best_index]), float(scores[order[0]])
        self.best_ids = {str(ids[i]) for i, v in zip(in_pool, scores) if v >= self.best_score - 1e-12}  # ties: windows
        self.top_ids = {str(ids[in_pool[i]]) for i in order[:max(1, int(np.ceil(TOP_SHARE * len(in_pool))))]}
        self.pool_size = len(in_pool)
        self.objective, self.budget, self.batch = objective, budget, batch

    def add(self, strategy: str, seed: int, order: list[str], seconds: float) -> None:
        record = self.results[strategy]
        record["seed_values"].append(seed)
        record["seconds"].append(seconds)
        hit = next((n for n, identifier in enumerate(order, start=1) if identifier in self.best_ids), None)
        record["found"].append(hit is not None)
        record["experiments_to_best"].append(hit if hit is not None else self.budget + 1)
        batches = int(np.ceil(self.budget / self.batch))
        record["batches_to_best"].append(int(np.ceil(hit / self.batch)) if hit is not None else batches + 1)
        record["recall_curve"].append(np.round(np.cumsum([i in self.top_ids for i in order]) / len(self.top_ids), 6).tolist())
        found = self.objective.score(np.array([self.value_of[i] for i in order]))
        best_so_far = np.maximum.accumulate(found)
        record["best_so_far"].append(best_so_far.round(6).tolist())
        record["regret_curve"].append((self.best_score - best_so_far).round(6).tolist())
        record["in_window_hits"].append(int(np.sum(found >= -1e-12)) if self.objective.kind == "target_window" else None)

    def complete_seeds(self) -> int:
        return min((len(record["experiments_to_best"]) for record in self.results.values()), default=0)

    def with_derived_metrics(self) -> dict:
        return derived_metrics({name: dict(record) for name, record in self.results.items()}, self.pool_size, self.budget)


def derived_metrics(strategies: dict, pool_size: int, budget: int) -> dict:
    """Adds to each strategy's per-seed record: top-5% recall at 10/20/40, EF (that recall over random's expected
    n / pool size), and the acceleration factors against random and against ``gp-qlogei`` (paired by seed); and
    ``distinct_runs``, how many seeds gave a campaign of their own (different best-so-far or recall curves): a
    deterministic strategy on a scenario whose seeds change nothing it sees (full starting data, no lab noise) has
    one run however many seeds are listed, and its median is that one run."""
    gp = strategies.get("gp-qlogei")
    gp_curve = dict(zip(gp["seed_values"], gp["recall_curve"])) if gp else {}
    for record in strategies.values():
        curves = record["recall_curve"]
        record["top5_recall"] = {f"@{n}": [recall_at(c, n) for c in curves] for n in recall_points(budget)}
        record["ef"] = {f"@{n}": [recall_at(c, n) / (min(n, len(c)) / pool_size) for c in curves]
                        for n in recall_points(budget)}
        record["af_random"] = [acceleration(c, None, pool_size, budget) for c in curves]
        record["distinct_runs"] = len({(tuple(b), tuple(c)) for b, c in zip(record["best_so_far"], curves)})
        record["af_gp"] = [acceleration(c, gp_curve[s], pool_size, budget) if s in gp_curve else None
                           for c, s in zip(curves, record["seed_values"])]  # None: gp-qlogei did not run that seed
    return strategies


def enhancement_factors(strategies: dict) -> dict:
    """Mean EF over seeds per strategy and recall point."""
    return {name: {point: mean_or_none(values) for point, values in record["ef"].items()}
            for name, record in strategies.items()}


def recall_at(curve: list[float], n: int) -> float:
    return float(curve[min(n, len(curve)) - 1]) if curve else 0.0


def acceleration(ours: list[float], other: list[float] | None, pool_size: int, budget: int) -> float | None:
    """Experiments another strategy needs to reach the top-5% recall r that ours reached by the budget, divided by
    the experiments ours needed for it. Random: r · pool size (its expected recall after n is n / pool size).
    A strategy that never reaches r within the budget counts as budget + 1 (the factor is then a lower bound).
    None where ours found none of the top 5%."""
    r = ours[-1] if ours else 0.0
    if r <= 0:
        return None
    n_ours = next(n for n, value in enumerate(ours, start=1) if value >= r - 1e-9)
    if other is None:
        return r * pool_size / n_ours
    n_other = next((n for n, value in enumerate(other, start=1) if value >= r - 1e-9), budget + 1)
    return n_other / n_ours


def mean_or_none(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def median_interval(values: list[float], level: float = 0.9, resamples: int = 2000) -> tuple[float, float, float]:
    """Median over seeds with a bootstrap interval (percentiles of the resampled medians; seeded, so reports
    repeat). NaN for no values."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, size=(resamples, len(values)), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.median(values)), float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


class SideLane:
    """``strategies`` for every seed in a second process with one thread (BayBE, whose GP fits take minutes, beside
    the E2T meta-training). Finished runs come back in seed order through a queue; a failure there is raised here."""

    def __init__(self, problems: dict[int, DiscoveryProblem], strategies: list[str]):
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
        self.outbox = context.Queue()
        self.process = context.Process(target=side_lane_runs, args=(problems, strategies, self.outbox),
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


def side_lane_runs(problems: dict[int, DiscoveryProblem], strategies: list[str], outbox) -> None:
    """The second process: ("run", strategy, seed, order, seconds) per run, then ("done", GP fits), or ("error", …)."""
    torch.set_num_threads(1)
    try:
        gp_fits = GPFitMemo()
        first = next(iter(problems.values()))
        baybe = (BayBEProposer(mean_imputed(first.features), first.objective, fit_memo=gp_fits)
                 if "baybe" in strategies else None)
        for seed, problem in problems.items():
            for strategy in strategies:
                outbox.put(("run", strategy, seed, *run_once(problem, strategy, seed, None, baybe, gp_fits)))
        outbox.put(("done", gp_fits.summary()))
    except BaseException:  # noqa: BLE001 - reported to the main process, which raises it
        outbox.put(("error", traceback.format_exc()))


def run_strategy(strategy: str, database: Path, config: CampaignConfig, features: np.ndarray, dataset, budget: int,
                 objective: Objective, seed: int, ensemble: E2TEnsemble | None, baybe: BayBEProposer | None,
                 gp_fits: GPFitMemo | None = None) -> list[str]:
    """One campaign run: propose → record → approve → simulated measurement, until ``budget`` experiments."""
    family, settings = STRATEGIES[strategy]
    acquisition = config.acquisition.model_copy(update=settings)
    engine = make_engine(f"sqlite:///{database}")
    lab = SimulatedLab(dataset, config.target, config.lab_noise, seed=seed)
    rng = np.random.default_rng(seed)
    gp = None  # the last batch's GP (gp-*, e2t-gp-*): warm start, or kept hyper-parameters
    transfer = None  # baybe-transfer's proposer
    if family == "baybe" and (baybe is None or len(baybe.labels) != len(features)):  # a seed's own pool (--source-fraction)
        baybe = BayBEProposer(mean_imputed(features), objective, fit_memo=gp_fits)
    try:
        for batch_number in range(int(np.ceil(budget / acquisition.batch_size))):
            with session_scope(engine) as session:
                state = read_state(session, config.name)
                done = len(campaign_experiments(session, service.get_campaign(session, config.name)))
            if done >= budget or state.measured.all():
                break
            acquisition.batch_size = min(config.acquisition.batch_size, budget - done)
            measured, y = state.measured, state.measured_value[state.measured]
            allowed = np.flatnonzero(~measured & ~state.pending)
            if family == "random":
                chosen = rng.choice(allowed, size=min(acquisition.batch_size, len(allowed)), replace=False)
            elif family == "baybe":
                chosen = baybe.propose(measured, y, acquisition.batch_size, seed=seed)
            elif family == "baybe-transfer":  # built on the first batch: the tasks are the rows' domains, the scope "target"
                transfer = transfer or BayBETransferProposer(
                    mean_imputed(features), objective, np.where(campaign_scope(state), TARGET_TASK, state.domains), fit_memo=gp_fits,
                    seed=seed)
                chosen = transfer.propose(measured, y, acquisition.batch_size, seed=seed)
            else:
                if family == "e2t":
                    surrogate = e2t_surrogate(acquisition, ensemble, features, measured, y, state.domains,
                                              batch_number, gp, gp_fits, in_scope=campaign_scope(state),
                                              objective_kind=objective.kind)
                    model, pool = surrogate.model, surrogate.pool_X
                else:  # hyper-parameters refitted every few batches, otherwise conditioned on the new data
                    pool = torch.as_tensor(mean_imputed(features))
                    steps, refit = gp_schedule(batch_number, acquisition.refit_every(objective.kind), gp)
                    model = fit_gp(pool[measured], torch.as_tensor(y), warm_start=gp, memo=gp_fits,
                                   max_iterations=steps, refit=refit)
                gp = model if acquisition.surrogate == "e2t_gp" or family == "gp" else None
                chosen = propose_batch(model, pool, measured, y, acquisition, objective, pending=state.pending,
                                       domains=state.domains, in_scope=campaign_scope(state),
                                       error_floor=ensemble.error_floor() if ensemble is not None else 0.0,
                                       seed=seed * 1000 + batch_number).indices
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


def interval_text(values: list, found: list[bool] | None = None) -> str:
    median, low, high = median_interval(values)
    if np.isnan(median):
        return "-"
    text = f"{median:.3g} [{low:.3g}, {high:.3g}]"
    missing = sum(1 for f in (found or []) if not f)
    return text + (f" ({missing}/{len(found)} not found)" if missing else "")


def discovery_table(report: dict) -> Table:
    window = report["objective"]["kind"] == "target_window"
    table = Table(title=f"{report['dataset']} {report['holdout']}: batches to find "
                        f"{'an in-window material' if window else report['best']['candidate']} (budget {report['budget']}, "
                        f"batch {report['batch']}, pool {report['pool_size']}, {report['seeds']} seeds; median [90% bootstrap])")
    ef_point = min(20, report["budget"])
    columns = ["strategy", "batches to best", "experiments to best",
               "top-5% recall @" + "/@".join(map(str, recall_points(report["budget"]))), f"EF @{ef_point}",
               "AF random", "AF gp-qlogei", "s / run"] + (["in-window hits"] if window else [])
    for column in columns:
        table.add_column(column)
    for name, record in report["strategies"].items():
        if not record["seconds"]:
            continue
        label = name + (f" ({record['resolved']})" if record.get("resolved") else "")
        recalls = "/".join(f"{np.mean(v):.2f}" for v in record["top5_recall"].values())
        ef = report["enhancement_factor"].get(name, {}).get(f"@{ef_point}")
        row = [label, interval_text(record["batches_to_best"], record["found"]),
               interval_text(record["experiments_to_best"], record["found"]), recalls,
               "-" if ef is None else f"{ef:.2f}", interval_text(record["af_random"]), interval_text(record["af_gp"]),
               f"{np.mean(record['seconds']):.0f}"]
        if window:
            row.append(interval_text(record["in_window_hits"]))
        table.add_row(*row)
    return table


def best_so_far_plot(report: dict, path: Path) -> Path:
    """Best objective value found so far (true values) against experiments: median and 10–90% band per strategy."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, record in report["strategies"].items():
        if not record["best_so_far"]:
            continue
        curves = np.array([c for c in record["best_so_far"] if len(c) == report["budget"]], dtype=float)
        if len(curves) == 0:
            continue
        x = np.arange(1, curves.shape[1] + 1)
        ax.plot(x, np.median(curves, 0), label=name)
        ax.fill_between(x, np.percentile(curves, 10, 0), np.percentile(curves, 90, 0), alpha=0.15)
    ax.axhline(report["best"]["value"] if report["objective"]["kind"] == "maximise" else 0.0 if
               report["objective"]["kind"] == "target_window" else -report["best"]["value"], color="k", lw=0.8, ls="--")
    ax.set_xlabel("experiments")
    ax.set_ylabel("best found so far (objective, true values)")
    ax.set_title(f"{report['dataset']} {report['holdout']}: median and 10–90% over {report['seeds']} seeds", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
