"""``e2t-al iterate | demo | serve | web``: running the closed loop."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from e2t_al.cli.common import CONFIG_DIR, URL_HELP, console, fail, print_json, store
from e2t_al.config import load_config
from e2t_al.data import DataError

loop_app = typer.Typer()


@loop_app.command("demo")
def demo(config: Optional[Path] = typer.Argument(None, help="campaign YAML (default: configs/campaign_hoip_gef.yaml)"),
         folder: Path = typer.Option(Path("runs/demo"), help="where the demo's database, models and plots go")):
    """A whole simulated campaign: HOIP with Ge-F unexplored at the start; find its highest band gap."""
    from e2t_al.config import CampaignConfig
    from flows.demo import run_demo

    try:
        cfg = load_config(config or CONFIG_DIR / "campaign_hoip_gef.yaml", CampaignConfig)
        summary = run_demo(cfg, folder)
    except DataError as exc:
        fail(str(exc))
    console.rule("demo summary")
    console.print(summary.line())
    for plot in summary.plots:
        console.print(f"plot: {plot}")



@loop_app.command("serve")
def serve(campaign: str = typer.Option(..., help="campaign name in the store"),
          url: Optional[str] = typer.Option(None, help="database URL (default: $E2T_AL_DATABASE_URL or sqlite:///e2t_al.sqlite)")):
    """Serve the iteration flow on the cron in the campaign's config, against a Prefect server
    (`prefect server start`, then PREFECT_API_URL=http://127.0.0.1:4200/api)."""
    from flows.deployments import serve_campaign

    try:
        serve_campaign(campaign, url)
    except (DataError, ValueError) as exc:
        fail(str(exc))



@loop_app.command("web")
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
        fail(str(exc))
    console.print(f"E2T-AL web app on http://{host}:{port}/ (add the first user with `e2t-al users add NAME --role admin`)")
    uvicorn.run(application, host=host, port=port, log_level="info")


@loop_app.command("iterate")
def iterate(campaign: str = typer.Option(..., help="campaign name in the store"),
            url: Optional[str] = typer.Option(None, help=URL_HELP),
            json_output: bool = typer.Option(False, "--json", help="print the result as JSON only")):
    """Run one iteration now (Prefect's ephemeral mode): adapt the model to the measurements, propose a batch.
    Prints the batch: rank, candidate, domain, prediction ± σ, acquisition value (and what chose the place), novelty."""
    from flows.campaign import campaign_iteration

    with store(url) as session:  # a clear error before Prefect starts: unknown campaign, unmigrated or unreachable store
        from db import service

        service.get_campaign(session, campaign)
    try:
        if json_output:
            result = campaign_iteration(campaign, url)
        else:
            with console.status(f"{campaign}: running one iteration (Prefect logs follow)"):
                result = campaign_iteration(campaign, url)
    except (DataError, ValueError) as exc:
        fail(str(exc))
    if json_output:
        print_json(result)
        return
    if result["status"] == "waiting":
        console.print(f"{campaign}: a batch is still open (proposals await a decision or a measurement); nothing proposed. "
                      f"See `e2t-al proposals list --campaign {campaign}`.")
        return
    if result.get("note"):
        console.print(f"{campaign} iteration {result['iteration']}: {result['note']}")
        return
    table = Table("rank", "candidate", "domain", "prediction ± σ", "acquisition", "chosen by", "novelty",
                  title=f"{campaign}, iteration {result['iteration']}: proposed batch {result['proposal_id']}")
    for row in result["batch"]:
        table.add_row(str(row["rank"]), row["candidate"], row["domain"], f"{row['predicted']:.3f} ± {row['std']:.3f}",
                      f"{row['acquisition']:.4g}", row["chosen_by"], f"{row['novelty']:.2f}")
    console.print(table)
    console.print(f"incumbent {result['incumbent']['value']:.4g} ({result['incumbent']['rule']}); model {result['model']}; "
                  f"{result['timings']['total_s']:.1f} s")
    console.print(f"next: e2t-al proposals approve --campaign {campaign} --all (or --item ID …), then enter measurements")
