"""``e2t-al campaigns``: create a campaign from its config, list, export and import."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from db import service
from e2t_al.cli.common import URL_HELP, console, fail, print_json, store
from e2t_al.data import DataError

campaigns_app = typer.Typer(help="Campaigns: create from a config, list, export, import an export.", no_args_is_help=True)


@campaigns_app.command("create")
def campaigns_create(config: Path = typer.Option(..., help="campaign YAML: candidates, measurements, prior (see README)"),
                     url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Create a campaign from its config: its own candidates, its starting measurements, and references to prior
    knowledge (public data sets or earlier campaigns), all checked first; all of it is written, or nothing."""
    from e2t_al.campaign.setup import config_datasets, create_campaign_from_config
    from e2t_al.config import CampaignConfig, load_config

    try:
        cfg = load_config(config, CampaignConfig)
        datasets = config_datasets(cfg)  # parsed before the write transaction opens
    except DataError as exc:
        fail(str(exc))
    with store(url) as session:
        setup = create_campaign_from_config(session, cfg, datasets, actor="cli")
    console.print(setup.line())
    for duplicate in setup.duplicates:
        console.print(f"[yellow]prior duplicate[/] {duplicate} → {'skipped yours' if duplicate.candidate in setup.skipped else 'kept yours'}")



@campaigns_app.command("list")
def campaigns_list(url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Campaigns with their own candidates and measurements; prior knowledge counted apart."""
    with store(url) as session:
        rows = [{"name": c.name, "target": c.target_property, "unit": c.unit, "objective": c.objective,
                 "candidates": service.count_candidates(session, c), "measured": len(service.measured_values(session, c)),
                 "prior": {name: n for _, name, n in service.campaign_priors(session, c)}}
                for c in service.list_campaigns(session)]
    if json_output:
        print_json(rows)
        return
    table = Table("name", "target", "objective", "candidates", "measured", "prior knowledge")
    for r in rows:
        table.add_row(r["name"], f"{r['target']} ({r['unit']})", r["objective"], str(r["candidates"]), str(r["measured"]),
                      ", ".join(f"{k}: {v}" for k, v in r["prior"].items()))
    console.print(table)


@campaigns_app.command("export")
def campaigns_export(campaign: str = typer.Option(...), out: Path = typer.Option(..., help="a new (or empty) folder"),
                     url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Write the campaign to a folder: candidates, measurements with history, proposals with decisions, the latest
    predictions (CSVs), prior data with provenance, the config, model checkpoints and a manifest with SHA-256s."""
    from db.transfer import export_campaign

    with store(url) as session:
        manifest = export_campaign(session, service.get_campaign(session, campaign), out)
    if json_output:
        print_json({"folder": str(out), "files": sorted(manifest["files"]), "model_versions": len(manifest["model_versions"])})
    else:
        console.print(f"exported {campaign!r} to {out}: {len(manifest['files'])} files, {len(manifest['model_versions'])} model version(s)")


@campaigns_app.command("import-export")
def campaigns_import_export(folder: Path = typer.Argument(..., help="a folder written by `e2t-al campaigns export`"),
                            name: Optional[str] = typer.Option(None, help="import under this name (default: the exported one)"),
                            url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Rebuild an exported campaign in this store: checked against its manifest, all of it or nothing."""
    from db.transfer import import_campaign

    with store(url) as session:
        campaign = import_campaign(session, folder, name)
        counts = {"campaign": campaign.name, "candidates": service.count_candidates(session, campaign),
                  "measurements": service.count_measurements(session, campaign, include_history=True),
                  "proposals": len(service.proposal_items(session, campaign))}
    if json_output:
        print_json(counts)
    else:
        console.print(f"imported {counts['campaign']!r} from {folder}: {counts['candidates']} candidates, "
                      f"{counts['measurements']} measurements, {counts['proposals']} proposals")
