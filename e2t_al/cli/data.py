"""``e2t-al data``: the bundled materials data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from e2t_al.cli.common import console, fail
from e2t_al.data import DataError, load_dataset

data_app = typer.Typer(help="Inspect the materials data sets.", no_args_is_help=True)


@data_app.command("summary")
def data_summary(dataset: str = typer.Option("hoip", help="hoip, polymers or mp"),
                 data_dir: Optional[Path] = typer.Option(None, help="data folder (default: $E2T_AL_DATA_DIR or ../shared/data)")):
    """Materials per element domain, targets, and every entry that could not be loaded."""
    try:
        data = load_dataset(dataset, data_dir)
    except DataError as exc:
        fail(str(exc))
    table = Table(title=f"{dataset}: {len(data)} materials")
    table.add_column("domain")
    table.add_column("materials", justify="right")
    for row in data.summary().itertuples():
        table.add_row(str(row.domain), str(row.count))
    console.print(table)
    console.print("targets: " + ", ".join(f"{t} ({data.units.get(t) or '-'})" for t in data.target_names))
    for problem in data.problems:
        console.print(f"[yellow]skipped or incomplete[/] {problem.identifier}: {problem.reason}")
