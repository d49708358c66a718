"""``e2t-al db``: create or upgrade the store."""

from __future__ import annotations

from typing import Optional

import typer

from db.engine import database_url, upgrade
from e2t_al.cli.common import URL_HELP, console

db_app = typer.Typer(help="Create or upgrade the database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Create the database, or bring it to the newest schema (Alembic migrations)."""
    revision = upgrade(url)
    console.print(f"database {database_url(url)} is at schema revision {revision}")
