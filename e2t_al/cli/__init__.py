"""The ``e2t-al`` command line: one module per command group (``bench``, ``data``, ``db``, ``campaigns``,
``candidates``, ``measurements``, ``proposals``, ``users``) and the loop's commands (``iterate``, ``demo``,
``serve``, ``web``) in ``loop``. Every command works through the library, the store's service layer and the flows."""

from __future__ import annotations

import os

from e2t_al.data.paths import PROJECT_ROOT

# Prefect: a project-local home, no telemetry; flows run in ephemeral mode unless PREFECT_API_URL names a server.
# Set before any module imports Prefect.
os.environ.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

import typer  # noqa: E402

from e2t_al.cli.bench import bench_app  # noqa: E402
from e2t_al.cli.campaigns import campaigns_app  # noqa: E402
from e2t_al.cli.candidates import candidates_app  # noqa: E402
from e2t_al.cli.common import DEBUG  # noqa: E402
from e2t_al.cli.data import data_app  # noqa: E402
from e2t_al.cli.db import db_app  # noqa: E402
from e2t_al.cli.loop import loop_app  # noqa: E402
from e2t_al.cli.measurements import measurements_app  # noqa: E402
from e2t_al.cli.proposals import proposals_app  # noqa: E402
from e2t_al.cli.users import users_app  # noqa: E402

app = typer.Typer(help="E2T-AL: active learning for materials discovery with extrapolative meta-learners.", no_args_is_help=True)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="show tracebacks instead of one-line errors")):
    DEBUG["on"] = debug


for name, group in (("bench", bench_app), ("data", data_app), ("db", db_app), ("campaigns", campaigns_app),
                    ("candidates", candidates_app), ("measurements", measurements_app), ("proposals", proposals_app),
                    ("users", users_app)):
    app.add_typer(group, name=name)
app.registered_commands += loop_app.registered_commands

if __name__ == "__main__":
    app()
