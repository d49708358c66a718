"""``e2t-al db|campaigns|candidates|measurements``: the store from the command line, through ``db.service``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from db import service
from db.engine import NotMigratedError, StoreError, database_url, session_scope, store_engine, upgrade
from db.importers import candidates_from_cif_folder, candidates_from_csv, candidates_from_dataset, measurements_from_csv
from db.schemas import MeasurementIn, validation_reason
from db.tables import Candidate
from e2t_al.data import DataError, load_dataset

console = Console()
URL_HELP = "database URL (default: $E2T_AL_DATABASE_URL or sqlite:///e2t_al.sqlite)"
db_app = typer.Typer(help="Create or upgrade the database.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaigns: create from a config, list.", no_args_is_help=True)
candidates_app = typer.Typer(help="Candidates of a campaign: import, list.", no_args_is_help=True)
measurements_app = typer.Typer(help="Measurements: add, import, list, correct, retract (history is kept).", no_args_is_help=True)
users_app = typer.Typer(help="People who use the web app and the API: add, list, make an API token.", no_args_is_help=True)


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@contextmanager
def store(url: str | None):
    """A transaction on the migrated store; every refusal becomes a clear error and nothing is written."""
    try:
        with session_scope(store_engine(url)) as session:
            yield session
    except (StoreError, NotMigratedError, DataError) as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_reason(exc))


@users_app.command("add")
def users_add(username: str = typer.Argument(..., help="sign-in name"),
              role: str = typer.Option(..., help="viewer | experimentalist | reviewer | admin"),
              password: Optional[str] = typer.Option(None, envvar="E2T_AL_PASSWORD",
                                                     help="at least 10 characters; asked for when not given"),
              url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Add a user (the first one is usually the admin: `e2t-al users add alice --role admin`)."""
    from db import accounts

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with store(url) as session:
        accounts.create_user(session, accounts.UserIn(username=username, role=role, password=password), actor="cli")
    console.print(f"user {username} ({role}) added")


@users_app.command("list")
def users_list(url: Optional[str] = typer.Option(None, help=URL_HELP)):
    from db import accounts

    with store(url) as session:
        for user in accounts.list_users(session):
            console.print(f"{user.username}\t{user.role}\tAPI token: {'yes' if user.api_token_hash else 'no'}")


@users_app.command("token")
def users_token(username: str, url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Make a new API token for a user (printed once; stored only as a hash; replaces the previous one)."""
    from db import accounts

    with store(url) as session:
        token = accounts.issue_api_token(session, accounts.get_user(session, username), actor="cli")
    print(token)


@db_app.command("upgrade")
def db_upgrade(url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Create the database, or bring it to the newest schema (Alembic migrations)."""
    revision = upgrade(url)
    console.print(f"database {database_url(url)} is at schema revision {revision}")


@campaigns_app.command("create")
def campaigns_create(config: Path = typer.Option(..., help="campaign YAML in configs/"),
                     url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Create a campaign from its config: the data set's candidates, and measurements of every domain it does not
    leave unexplored."""
    from e2t_al.campaign import create_campaign_from_config
    from e2t_al.config import CampaignConfig, load_config

    try:
        cfg = load_config(config, CampaignConfig)
        dataset = load_dataset(cfg.dataset, cfg.data_dir)  # parsed before the write transaction opens
    except DataError as exc:
        fail(str(exc))
    with store(url) as session:
        campaign, candidates, measured = create_campaign_from_config(session, cfg, dataset)
    console.print(f"campaign {campaign.name!r}: {candidates} candidates, {measured} measured at the start")


@campaigns_app.command("list")
def campaigns_list(url: Optional[str] = typer.Option(None, help=URL_HELP)):
    with store(url) as session:
        table = Table("name", "target", "objective", "candidates", "measured")
        for campaign in service.list_campaigns(session):
            table.add_row(campaign.name, f"{campaign.target_property} ({campaign.unit})", campaign.objective,
                          str(service.count_candidates(session, campaign)), str(len(service.measured_values(session, campaign))))
    console.print(table)


@candidates_app.command("import")
def candidates_import(campaign: str = typer.Option(...),
                      csv: Optional[Path] = typer.Option(None, help="CSV: identifier + smiles|formula|cif [+ element_domain]"),
                      cif_dir: Optional[Path] = typer.Option(None, help="folder of .cif files"),
                      dataset: Optional[str] = typer.Option(None, help="a data set: hoip, polymers or mp"),
                      data_dir: Optional[Path] = typer.Option(None, help="data folder for --dataset"),
                      operator: str = typer.Option("cli", help="who imports (audit log)"),
                      url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Import candidates; every bad row is reported with its line and reason, and then nothing is written."""
    if sum(x is not None for x in (csv, cif_dir, dataset)) != 1:
        fail("give exactly one of --csv, --cif-dir, --dataset")
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        if csv is not None:
            rows, problems = candidates_from_csv(csv)
        elif cif_dir is not None:
            rows, problems = candidates_from_cif_folder(cif_dir)
        else:
            data = load_dataset(dataset, data_dir)
            rows, problems = candidates_from_dataset(data)
            for problem in data.problems:
                console.print(f"[yellow]{dataset}: {problem.identifier}: {problem.reason}[/]")
        added = service.import_candidates(session, target, rows, problems, actor=operator)
    console.print(f"imported {len(added)} candidates into {campaign!r}")


@candidates_app.command("list")
def candidates_list(campaign: str = typer.Option(...), domain: Optional[str] = typer.Option(None, help="only this element domain"),
                    url: Optional[str] = typer.Option(None, help=URL_HELP)):
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        measured = service.measured_values(session, target)
        table = Table("identifier", "domain", "kind", f"measured ({target.unit})")
        for candidate in service.list_candidates(session, target, domain):
            value = measured.get(candidate.identifier)
            table.add_row(candidate.identifier, candidate.element_domain, candidate.representation_kind,
                          "" if value is None else f"{value:.4g}")
    console.print(table)


@measurements_app.command("add")
def measurements_add(campaign: str = typer.Option(...), candidate: str = typer.Option(...), value: float = typer.Option(...),
                     unit: str = typer.Option(...), operator: str = typer.Option(...),
                     uncertainty: Optional[float] = typer.Option(None), method: Optional[str] = typer.Option(None),
                     notes: Optional[str] = typer.Option(None),
                     allow_duplicate: bool = typer.Option(False, help="keep a second identical entry within a minute"),
                     url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Record one measurement (checked: candidate, unit, finite value in the valid range, not entered twice)."""
    with store(url) as session:
        data = MeasurementIn(candidate=candidate, value=value, unit=unit, operator=operator, uncertainty=uncertainty,
                             method=method, notes=notes)
        measurement = service.add_measurement(session, service.get_campaign(session, campaign), data, allow_duplicate)
    console.print(f"measurement {measurement.id}: {candidate} = {value} {unit}")


@measurements_app.command("import")
def measurements_import(file: Path = typer.Argument(..., help="CSV: candidate,value,unit[,uncertainty,method,operator,measured_at,notes]"),
                        campaign: str = typer.Option(...), operator: Optional[str] = typer.Option(None, help="operator for rows without one"),
                        allow_duplicate: bool = typer.Option(False), url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Import a CSV of measurements: all rows or none, every refused row listed with its line and reason."""
    with store(url) as session:
        rows, problems = measurements_from_csv(file, operator)
        added = service.import_measurements(session, service.get_campaign(session, campaign), rows, problems, allow_duplicate)
    console.print(f"imported {len(added)} measurements into {campaign!r}")


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
                         value: float = typer.Option(...), unit: str = typer.Option(...), operator: str = typer.Option(...),
                         notes: Optional[str] = typer.Option(None), url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Supersede a measurement with a corrected value (the old one stays in the history)."""
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        old = service.get_measurement(session, target, measurement_id)
        identifier = session.get(Candidate, old.candidate_id).identifier
        new = service.correct_measurement(session, target, measurement_id,
                                          MeasurementIn(candidate=identifier, value=value, unit=unit, operator=operator, notes=notes))
    console.print(f"measurement {new.id} supersedes {measurement_id}")


@measurements_app.command("retract")
def measurements_retract(measurement_id: int = typer.Argument(...), campaign: str = typer.Option(...),
                         operator: str = typer.Option(...), reason: str = typer.Option(...),
                         url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Retract a measurement: it no longer counts, and who, when and why are kept."""
    with store(url) as session:
        service.retract_measurement(session, service.get_campaign(session, campaign), measurement_id, operator, reason)
    console.print(f"measurement {measurement_id} retracted")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(candidates_app, name="candidates")
    app.add_typer(measurements_app, name="measurements")
    app.add_typer(users_app, name="users")
