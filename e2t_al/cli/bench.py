"""``e2t-al bench``: benchmarks that print figures and write a JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import os

from e2t_al.cli.common import CONFIG_DIR, console, fail
from e2t_al.config import ExtrapolationBenchConfig, load_config
from e2t_al.data import DataError

bench_app = typer.Typer(help="Benchmarks: print figures and write a JSON report.", no_args_is_help=True)


@bench_app.command("extrapolation")
def bench_extrapolation(
    dataset: str = typer.Option("hoip", help="hoip, polymers or mp"),
    target: Optional[str] = typer.Option(None, help="target property (default: the config's)"),
    holdout: str = typer.Option(..., help="element domain to hold out: Ge-F (hoip), a polymer class (polymers), an element (mp); "
                                          "'all': leave-one-domain-out over every domain (resumable with the same --json)"),
    seeds: int = typer.Option(5, help="repetitions with different seeds"),
    first_seed: int = typer.Option(0, help="seeds first-seed … first-seed + seeds − 1 (check tuned settings on fresh seeds)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the JSON report here (and a parity plot beside it)"),
    plot: Optional[Path] = typer.Option(None, help="parity plot PNG (default: the JSON path with .png)"),
    config: Optional[Path] = typer.Option(None, help="benchmark YAML (default: configs/extrapolation_<dataset>.yaml)"),
    members: Optional[int] = typer.Option(None, help="ensemble members (default: the config's)"),
    data_dir: Optional[Path] = typer.Option(None, help="data folder (default: $E2T_AL_DATA_DIR or ../shared/data)"),
    methods: Optional[str] = typer.Option(None, help="comma-separated methods (default: all: e2t, e2t_ensemble, e2t_gp, nn, "
                                                     "nn_ensemble, nn_ridge, ridge, gp, oracle)"),
):
    """Train on everything outside the held-out domain, test on it: E2T (one member and the ensemble), the E2T-informed
    GP, the baselines nn, nn_ensemble, nn_ridge, ridge and gp, and the oracle."""
    from e2t_al.bench.extrapolation import run_extrapolation

    try:
        cfg = _bench_config(dataset, config, data_dir, members)
        if target:
            cfg = cfg.model_copy(update={"target": target})
        chosen = {"methods": tuple(m.strip() for m in methods.split(",") if m.strip())} if methods is not None else {}
        run_extrapolation(cfg, holdout, seeds, json_path=json_path, plot_path=plot, console=console, first_seed=first_seed, **chosen)
    except DataError as exc:
        fail(str(exc))



@bench_app.command("extrapolation-merge")
def bench_extrapolation_merge(
    reports: list[Path] = typer.Argument(..., help="leave-one-domain-out reports (--holdout all) of the same config, other seeds"),
    json_path: Path = typer.Option(..., "--json", help="write the merged report here (and the per-domain plot beside it)"),
):
    """Merge leave-one-domain-out runs of different seeds (run in parts, e.g. one per core) into one report and table."""
    from e2t_al.bench.extrapolation import merge_leave_one_domain_out

    try:
        missing = [str(p) for p in reports if not p.exists()]
        if missing:
            raise DataError(f"no such report: {', '.join(missing)}")
        merge_leave_one_domain_out(reports, json_path, console=console)
    except DataError as exc:
        fail(str(exc))


def _bench_config(dataset: str, config: Optional[Path], data_dir: Optional[Path], members: Optional[int]) -> ExtrapolationBenchConfig:
    path = config or CONFIG_DIR / f"extrapolation_{dataset}.yaml"
    cfg = load_config(path, ExtrapolationBenchConfig) if (config is not None or path.exists()) else ExtrapolationBenchConfig(dataset=dataset)
    if cfg.dataset != dataset:
        fail(f"config {path} is for data set {cfg.dataset!r}, not {dataset!r}")
    if data_dir:
        cfg = cfg.model_copy(update={"data_dir": data_dir})
    if members:
        cfg.ensemble.members = members
    return cfg



@bench_app.command("adaptation")
def bench_adaptation(
    dataset: str = typer.Option("hoip"), holdout: str = typer.Option(...),
    shots: str = typer.Option("0,5,10,20,40", help="comma-separated k"), seeds: int = typer.Option(5),
    json_path: Optional[Path] = typer.Option(None, "--json"), config: Optional[Path] = typer.Option(None),
    members: Optional[int] = typer.Option(None), scratch_members: Optional[int] = typer.Option(None, help="members of the from-scratch ensemble"),
    finetune_steps: int = typer.Option(200), data_dir: Optional[Path] = typer.Option(None),
    methods: str = typer.Option("instant,finetune,gp,e2t_gp,scratch", help="which methods (instant always runs)"),
):
    """R² and RMSE on the rest of a held-out domain after k of its measurements: instant, finetune, gp, e2t_gp, scratch."""
    from e2t_al.bench.adaptation import run_adaptation
    from e2t_al.config import AdaptationConfig

    try:
        k = sorted({int(s) for s in shots.split(",") if s.strip()})
        cfg = _bench_config(dataset, config, data_dir, members)
        run_adaptation(cfg, holdout, k, seeds, AdaptationConfig(finetune_steps=finetune_steps), scratch_members, json_path, console,
                       methods=tuple(m.strip() for m in methods.split(",") if m.strip()))
    except ValueError as exc:
        fail(str(exc))



@bench_app.command("propose")
def bench_propose(
    dataset: str = typer.Option("hoip"), pool_size: int = typer.Option(1345, help="≤ the data set: real pool; above: synthetic"),
    batch: int = typer.Option(8), measured: int = typer.Option(100, help="candidates measured before the step"),
    repeats: int = typer.Option(3), baybe: bool = typer.Option(True, help="also time BayBE's recommender"),
    model_dir: Optional[Path] = typer.Option(None, help="reuse (or save) the trained ensemble here"),
    json_path: Optional[Path] = typer.Option(None, "--json"), config: Optional[Path] = typer.Option(None),
    members: Optional[int] = typer.Option(None), data_dir: Optional[Path] = typer.Option(None),
):
    """Seconds per proposal step (ensemble prediction + batch acquisition), E2T against BayBE."""
    from e2t_al.bench.propose import run_propose_bench

    try:
        run_propose_bench(_bench_config(dataset, config, data_dir, members), pool_size, batch, measured, repeats, baybe,
                          model_dir, json_path, console)
    except ValueError as exc:
        fail(str(exc))



@bench_app.command("discovery")
def bench_discovery(
    dataset: str = typer.Option("hoip"), target: Optional[str] = typer.Option(None),
    holdout: str = typer.Option(..., help="the unexplored domain(s), pooled: Ge-F, or Ge-F,Sn-F,Pb-F"),
    budget: int = typer.Option(40), batch: int = typer.Option(4), seeds: int = typer.Option(10),
    first_seed: int = typer.Option(0, help="seeds first-seed … first-seed + seeds − 1 (e.g. to share seeds between machines)"),
    strategies: str = typer.Option("e2t,e2t-gauss-qlogei,gp-qlogei,baybe,random"),
    objective: str = typer.Option("max", help="max, min, target:VALUE or target:LOW:HIGH (a window)"),
    pool: str = typer.Option("holdout", help="holdout (the unexplored domains' labelled materials), or all-unmeasured (also the unlabelled ones; their proposals fail)"),
    source_fraction: float = typer.Option(1.0, help="share of the other domains measured at the start (seeded)"),
    noise: float = typer.Option(0.0, help="the simulated lab's noise σ, in the target's unit (success judged on true values)"),
    json_path: Optional[Path] = typer.Option(None, "--json"),
    config: Optional[Path] = typer.Option(None, help="campaign YAML for the model (default: configs/discovery_<dataset>.yaml)"),
    data_dir: Optional[Path] = typer.Option(None),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="2: baybe runs in a second process beside the other strategies"),
):
    """Batches and experiments until each strategy finds the scope's best material, top-5% recall, EF, acceleration."""
    from e2t_al.acquisition.batch import Objective
    from e2t_al.acquisition.objectives import parse_objective
    from e2t_al.bench.discovery import Scenario, discovery_model_config, run_discovery

    try:
        cfg = discovery_model_config(dataset, config, target, data_dir)
        scenario = Scenario(tuple(h.strip() for h in holdout.split(",") if h.strip()), Objective(*parse_objective(objective)),
                            budget, batch, pool, source_fraction, noise)
        run_discovery(cfg, scenario, seeds=seeds, strategies=[s.strip() for s in strategies.split(",") if s.strip()],
                      json_path=json_path, console=console, workers=workers, first_seed=first_seed)
    except ValueError as exc:
        fail(str(exc))


@bench_app.command("discovery-suite")
def bench_discovery_suite(
    suite: Path = typer.Option(CONFIG_DIR / "discovery_suite.yaml", help="the suite YAML: strategies and named scenarios"),
    seeds: int = typer.Option(10), first_seed: int = typer.Option(0, help="run seeds first-seed …; merged into --json"),
    scenarios: Optional[str] = typer.Option(None, help="comma-separated scenario names (default: all)"),
    strategies: Optional[str] = typer.Option(None, help="comma-separated strategies (default: the suite's)"),
    json_path: Path = typer.Option(Path("reports/discovery_suite.json"), "--json",
                                   help="the suite report; seeds already in it are kept and merged"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="2: baybe runs in a second process"),
    data_dir: Optional[Path] = typer.Option(None),
):
    """Named discovery scenarios: one summary table (median batches to best [90% interval]), a JSON, a plot each."""
    from e2t_al.bench.suite import run_suite

    try:
        run_suite(suite, seeds, first_seed, json_path, console, workers=workers, data_dir=data_dir,
                  only=[s.strip() for s in scenarios.split(",")] if scenarios else None,
                  strategies=[s.strip() for s in strategies.split(",")] if strategies else None)
    except ValueError as exc:
        fail(str(exc))


@bench_app.command("web-load")
def bench_web_load(users: int = typer.Option(20, help="simulated people: 70% readers, 20% experimentalists, 10% reviewers"),
                   duration: float = typer.Option(30.0, help="seconds of load"),
                   json_path: Optional[Path] = typer.Option(None, "--json"),
                   store: Optional[str] = typer.Option(None, help="database URL to load (default: a copy of the demo's store; "
                                                                  "a named store gets accounts and writes: use a scratch one)"),
                   csv_rows: int = typer.Option(5000, help="rows of the CSV previewed every --csv-every seconds"),
                   csv_every: float = typer.Option(30.0)):
    """The web app under load (locust): requests, errors, p50/p95/p99 per route; then every acknowledged write is
    checked to be in the store exactly once, and no refused one."""
    from e2t_al.bench.web_load import run_web_load

    try:
        run_web_load(users, duration, json_path, console, store=store, csv_rows=csv_rows, csv_every=csv_every)
    except ValueError as exc:
        fail(str(exc))
