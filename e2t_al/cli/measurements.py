"""``e2t-al measurements``: add, import, list, correct, retract (the history is kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from db import service
from db.importers import measurements_from_csv
from db.schemas import MeasurementIn
from db.tables import Candidate
from e2t_al.cli.common import OPERATOR_HELP, URL_HELP, console, fail, operator_of, print_json, store


measurements_app = typer.Typer(help="Measurements: add, import, list, correct, retract (history is kept).", no_args_is_help=True)


@measurements_app.command("add")
def measurements_add(campaign: str = typer.Option(...), candidate: str = typer.Option(...), value: float = typer.Option(...),
                     unit: str = typer.Option(...), operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP),
                     uncertainty: Optional[float] = typer.Option(None), method: Optional[str] = typer.Option(None),
                     notes: Optional[str] = typer.Option(None),
                     allow_duplicate: bool = typer.Option(False, help="keep a second identical entry within a minute"),
                     url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Record one measurement (checked: candidate, unit, finite value in the valid range, not entered twice)."""
    from e2t_al.units import UNITS, unknown_unit

    with store(url) as session:
        target = service.get_campaign(session, campaign)
        if unit not in UNITS:
            fail(unknown_unit(unit, target.unit))
        data = MeasurementIn(candidate=candidate, value=value, unit=unit, operator=operator_of(operator), uncertainty=uncertainty,
                             method=method, notes=notes)
        measurement = service.add_measurement(session, service.get_campaign(session, campaign), data, allow_duplicate)
    console.print(f"measurement {measurement.id}: {candidate} = {value} {unit}")



@measurements_app.command("import")
def measurements_import(file: Path = typer.Argument(..., help="CSV: candidate,value,unit[,uncertainty,method,operator,measured_at,notes]"),
                        campaign: str = typer.Option(...),
                        operator: Optional[str] = typer.Option(None, help=f"operator for rows without one; {OPERATOR_HELP}"),
                        allow_duplicate: bool = typer.Option(False),
                        dry_run: bool = typer.Option(False, "--dry-run", help="preview: each row's outcome; nothing is written"),
                        valid_rows_only: bool = typer.Option(False, "--valid-rows-only",
                                                             help="import the valid rows and leave out the refused ones"),
                        url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Import a CSV of measurements: all rows or none (the default, as in the web app), every refused row listed with
    its line and reason; ``--dry-run`` previews, ``--valid-rows-only`` imports the rows that pass."""
    rows, problems = _read(file, operator)
    if dry_run:
        with store(url, preview=True) as session:
            checks = service.check_measurement_rows(session, service.get_campaign(session, campaign), rows, problems)
        if json_output:
            print_json([{"line": c.line, "candidate": c.candidate, "value": c.value, "unit": c.unit, "refused": c.reason} for c in checks])
            return
        table = Table("line", "candidate", "value", "result", title=f"{file.name}: preview, nothing written")
        for c in checks:
            table.add_row(c.line, c.candidate, f"{c.value} {c.unit or ''}" if c.value is not None else "",
                          "ok" if c.reason is None else f"refused: {c.reason}")
        console.print(table)
        good = sum(c.reason is None for c in checks)
        console.print(f"{good} of {len(checks)} row(s) can be recorded" + ("" if good == len(checks) else
                      "; import with --valid-rows-only to leave out the refused ones, or fix the file"))
        return
    with store(url) as session:
        added = service.import_measurements(session, service.get_campaign(session, campaign), rows, problems, allow_duplicate,
                                            valid_rows_only=valid_rows_only)
    left_out = len(rows) + len(problems) - len(added)
    if json_output:
        print_json({"imported": [m.id for m in added], "left_out": left_out})
    else:
        console.print(f"imported {len(added)} measurements into {campaign!r}" + (f"; {left_out} refused row(s) left out" if left_out else ""))


def _read(file: Path, operator: Optional[str]):
    import os

    from e2t_al.cli.common import OPERATOR_ENV
    from e2t_al.data import DataError

    try:
        return measurements_from_csv(file, operator or os.environ.get(OPERATOR_ENV))
    except DataError as exc:
        fail(str(exc))


@measurements_app.command("list")
def measurements_list(campaign: str = typer.Option(...), history: bool = typer.Option(False, help="also retracted and superseded"),
                      url: Optional[str] = typer.Option(None, help=URL_HELP)):
    with store(url) as session:
        rows = service.list_measurements(session, service.get_campaign(session, campaign), include_history=history)
    table = Table("id", "candidate", "value", "unit", "±", "operator", "recorded (UTC)", "status", "corrects")
    for m, identifier in rows:
        table.add_row(str(m.id), identifier, f"{m.value:.6g}", m.unit, "" if m.uncertainty is None else f"{m.uncertainty:.3g}",
                      m.operator, m.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), m.status, str(m.corrects_id or ""))
    console.print(table)



@measurements_app.command("correct")
def measurements_correct(measurement_id: int = typer.Argument(...), campaign: str = typer.Option(...),
                         value: float = typer.Option(...), unit: str = typer.Option(...),
                         operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP),
                         notes: Optional[str] = typer.Option(None), url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Supersede a measurement with a corrected value (the old one stays in the history)."""
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        old = service.get_measurement(session, target, measurement_id)
        identifier = session.get(Candidate, old.candidate_id).identifier
        new = service.correct_measurement(session, target, measurement_id,
                                          MeasurementIn(candidate=identifier, value=value, unit=unit, operator=operator_of(operator), notes=notes))
    console.print(f"measurement {new.id} supersedes {measurement_id}")



@measurements_app.command("retract")
def measurements_retract(measurement_id: int = typer.Argument(...), campaign: str = typer.Option(...),
                         operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP), reason: str = typer.Option(...),
                         url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Retract a measurement: it no longer counts, and who, when and why are kept."""
    with store(url) as session:
        service.retract_measurement(session, service.get_campaign(session, campaign), measurement_id, operator_of(operator), reason)
    console.print(f"measurement {measurement_id} retracted")
