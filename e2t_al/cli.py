"""The ``e2t-al`` command line."""

from __future__ import annotations

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
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the JSON report here (and a parity plot beside it)"),
    plot: Optional[Path] = typer.Option(None, help="parity plot PNG (default: the JSON path with .png)"),
    config: Optional[Path] = typer.Option(None, help="benchmark YAML (default: configs/extrapolation_<dataset>.yaml)"),
    members: Optional[int] = typer.Option(None, help="ensemble members (default: the config's)"),
    data_dir: Optional[Path] = typer.Option(None, help="data folder (default: $E2T_AL_DATA_DIR or ../shared/data)"),
):
    """Train on everything outside the held-out domain, test on it: e2t, e2t_ensemble, nn, ridge and oracle."""
    from e2t_al.bench.extrapolation import run_extrapolation

    try:
        path = config or CONFIG_DIR / f"extrapolation_{dataset}.yaml"
        explicit_or_shipped = config is not None or path.exists()
        cfg = load_config(path, ExtrapolationBenchConfig) if explicit_or_shipped else ExtrapolationBenchConfig(dataset=dataset)
        if cfg.dataset != dataset:
            _fail(f"config {path} is for data set {cfg.dataset!r}, not {dataset!r}")
        updates = {"target": target} if target else {}
        if data_dir:
            updates["data_dir"] = data_dir
        cfg = cfg.model_copy(update=updates)
        if members:
            cfg.ensemble.members = members
        run_extrapolation(cfg, holdout, seeds, json_path=json_path, plot_path=plot, console=console)
    except DataError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    app()
