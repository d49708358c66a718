"""The ``e2t-al`` command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from e2t_al.config import ExtrapolationBenchConfig, load_config
from e2t_al.data import DataError, load_dataset
from e2t_al.data.paths import PROJECT_ROOT
from e2t_al.store_cli import register as register_store_commands

app = typer.Typer(help="E2T-AL: active learning for materials discovery with extrapolative meta-learners.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print figures and write a JSON report.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect the materials data sets.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
console = Console()
register_store_commands(app)
CONFIG_DIR = PROJECT_ROOT / "configs"

# Prefect: a project-local home, no telemetry; flows run in ephemeral mode unless PREFECT_API_URL names a server.
os.environ.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@data_app.command("summary")
def data_summary(dataset: str = typer.Option("hoip", help="hoip, polymers or mp"),
                 data_dir: Optional[Path] = typer.Option(None, help="data folder (default: $E2T_AL_DATA_DIR or ../shared/data)")):
    """Materials per element domain, targets, and every entry that could not be loaded."""
    try:
        data = load_dataset(dataset, data_dir)
    except DataError as exc:
        _fail(str(exc))
    table = Table(title=f"{dataset}: {len(data)} materials")
    table.add_column("domain")
    table.add_column("materials", justify="right")
    for row in data.summary().itertuples():
        table.add_row(str(row.domain), str(row.count))
    console.print(table)
    console.print("targets: " + ", ".join(f"{t} ({data.units.get(t) or '-'})" for t in data.target_names))
    for problem in data.problems:
        console.print(f"[yellow]skipped or incomplete[/] {problem.identifier}: {problem.reason}")


@bench_app.command("extrapolation")
def bench_extrapolation(
    dataset: str = typer.Option("hoip", help="hoip, polymers or mp"),
    target: Optional[str] = typer.Option(None, help="target property (default: the config's)"),
    holdout: str = typer.Option(..., help="element domain to hold out: Ge-F (hoip), a polymer class (polymers), an element (mp)"),
    seeds: int = typer.Option(5, help="repetitions with different seeds"),
    first_seed: int = typer.Option(0, help="seeds first-seed … first-seed + seeds − 1 (check tuned settings on fresh seeds)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the JSON report here (and a parity plot beside it)"),
    plot: Optional[Path] = typer.Option(None, help="parity plot PNG (default: the JSON path with .png)"),
    config: Optional[Path] = typer.Option(None, help="benchmark YAML (default: configs/extrapolation_<dataset>.yaml)"),
    members: Optional[int] = typer.Option(None, help="ensemble members (default: the config's)"),
    data_dir: Optional[Path] = typer.Option(None, help="data folder (default: $E2T_AL_DATA_DIR or ../shared/data)"),
):
    """Train on everything outside the held-out domain, test on it: e2t, e2t_ensemble, nn, ridge and oracle."""
    from e2t_al.bench.extrapolation import run_extrapolation

    try:
        cfg = _bench_config(dataset, config, data_dir, members)
        if target:
            cfg = cfg.model_copy(update={"target": target})
        run_extrapolation(cfg, holdout, seeds, json_path=json_path, plot_path=plot, console=console, first_seed=first_seed)
    except DataError as exc:
        _fail(str(exc))


def _bench_config(dataset: str, config: Optional[Path], data_dir: Optional[Path], members: Optional[int]) -> ExtrapolationBenchConfig:
    path = config or CONFIG_DIR / f"extrapolation_{dataset}.yaml"
    cfg = load_config(path, ExtrapolationBenchConfig) if (config is not None or path.exists()) else ExtrapolationBenchConfig(dataset=dataset)
    if cfg.dataset != dataset:
        _fail(f"config {path} is for data set {cfg.dataset!r}, not {dataset!r}")
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
        _fail(str(exc))


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
        _fail(str(exc))


@bench_app.command("discovery")
def bench_discovery(
    dataset: str = typer.Option("hoip"), target: Optional[str] = typer.Option(None),
    holdout: str = typer.Option(..., help="the unexplored domain(s), pooled: Ge-F, or Ge-F,Sn-F,Pb-F"),
    budget: int = typer.Option(40), batch: int = typer.Option(4), seeds: int = typer.Option(10),
    first_seed: int = typer.Option(0, help="seeds first-seed … first-seed + seeds − 1 (e.g. to share seeds between machines)"),
    strategies: str = typer.Option("e2t,e2t-gauss-qlogei,gp-qlogei,baybe,random"),
    objective: str = typer.Option("max", help="max, min, target:VALUE or target:LOW:HIGH (a window)"),
    pool: str = typer.Option("holdout", help="holdout, or all-unmeasured"),
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
    from e2t_al.bench.discovery import Scenario, run_discovery

    try:
        cfg = discovery_config(dataset, config, target, data_dir)
        scenario = Scenario(tuple(h.strip() for h in holdout.split(",") if h.strip()), Objective(*parse_objective(objective)),
                            budget, batch, pool, source_fraction, noise)
        run_discovery(cfg, scenario, seeds=seeds, strategies=[s.strip() for s in strategies.split(",") if s.strip()],
                      json_path=json_path, console=console, workers=workers, first_seed=first_seed)
    except ValueError as exc:
        _fail(str(exc))


def discovery_config(dataset: str, config: Optional[Path], target: Optional[str], data_dir: Optional[Path]):
    from e2t_al.config import CampaignConfig

    cfg = load_config(config or CONFIG_DIR / f"discovery_{dataset}.yaml", CampaignConfig)
    if cfg.dataset != dataset:
        raise DataError(f"config is for data set {cfg.dataset!r}, not {dataset!r}")
    return cfg.model_copy(update={k: v for k, v in {"target": target, "data_dir": data_dir}.items() if v})


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
        _fail(str(exc))


@app.command("demo")
def demo(config: Optional[Path] = typer.Argument(None, help="campaign YAML (default: configs/campaign_hoip_gef.yaml)"),
         folder: Path = typer.Option(Path("runs/demo"), help="where the demo's database, models and plots go")):
    """A whole simulated campaign: HOIP with Ge-F unexplored at the start; find its highest band gap."""
    from e2t_al.config import CampaignConfig
    from e2t_al.demo import run_demo

    try:
        cfg = load_config(config or CONFIG_DIR / "campaign_hoip_gef.yaml", CampaignConfig)
        summary = run_demo(cfg, folder)
    except DataError as exc:
        _fail(str(exc))
    console.rule("demo summary")
    console.print(summary.line())
    for plot in summary.plots:
        console.print(f"plot: {plot}")


@app.command("serve")
def serve(campaign: str = typer.Option(..., help="campaign name in the store"),
          url: Optional[str] = typer.Option(None, help="database URL (default: $E2T_AL_DATABASE_URL or sqlite:///e2t_al.sqlite)")):
    """Serve the iteration flow on the cron in the campaign's config, against a Prefect server
    (`prefect server start`, then PREFECT_API_URL=http://127.0.0.1:4200/api)."""
    from flows.deployments import serve_campaign

    try:
        serve_campaign(campaign, url)
    except (DataError, ValueError) as exc:
        _fail(str(exc))


@app.command("web")
def web(host: str = typer.Option("127.0.0.1", help="address to listen on (only this machine by default)"),
        port: int = typer.Option(8000),
        url: Optional[str] = typer.Option(None, help="database URL (default: $E2T_AL_DATABASE_URL or sqlite:///e2t_al.sqlite)"),
        secure_cookies: bool = typer.Option(False, help="send cookies over HTTPS only (behind a TLS proxy)")):
    """The lab web app: review proposals, enter measurements, watch campaigns; JSON API under /api/."""
    import uvicorn

    from db.engine import NotMigratedError
    from e2t_al.web.app import create_app

    try:
        application = create_app(url, secure_cookies=secure_cookies)
    except NotMigratedError as exc:
        _fail(str(exc))
    console.print(f"E2T-AL web app on http://{host}:{port}/ (add the first user with `e2t-al users add NAME --role admin`)")
    uvicorn.run(application, host=host, port=port, log_level="info")


if __name__ == "__main__":
    app()
