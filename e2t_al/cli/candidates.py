"""``e2t-al candidates``: a campaign's candidates: import, list, retire."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from db import service
from db.importers import candidates_from_cif_folder, candidates_from_csv, candidates_from_dataset
from e2t_al.cli.common import OPERATOR_HELP, URL_HELP, console, fail, operator_of, print_json, store
from e2t_al.data import load_dataset

candidates_app = typer.Typer(help="Candidates of a campaign: import, list, retire.", no_args_is_help=True)


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
def candidates_list(campaign: str = typer.Option(...),
                    domain: Optional[str] = typer.Option(None, help="only this element domain, in any element order (Cs-Pb-I = Cs-I-Pb)"),
                    url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """The campaign's own candidates (never prior data), with their measured value and whether they are retired."""
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        measured = service.measured_values(session, target)
        candidates = service.list_candidates(session, target, domain)
        if domain and not candidates:
            known = sorted({c.element_domain for c in service.list_candidates(session, target)})
            fail(f"no candidates in domain {domain!r}; the campaign's domains: {', '.join(known)}")
        rows = [{"identifier": c.identifier, "domain": c.element_domain, "kind": c.representation_kind,
                 "measured": measured.get(c.identifier), "retired": c.retired_at is not None} for c in candidates]
        priors = service.campaign_priors(session, target)
    if json_output:
        print_json(rows)
        return
    table = Table("identifier", "domain", "kind", f"measured ({target.unit})", "retired")
    for r in rows:
        table.add_row(r["identifier"], r["domain"], r["kind"], "" if r["measured"] is None else f"{r['measured']:.4g}",
                      "yes" if r["retired"] else "")
    console.print(table)
    for _, name, count in priors:
        console.print(f"prior knowledge: {name}, {count} materials (not candidates)")


@candidates_app.command("retire")
def candidates_retire(identifiers: List[str] = typer.Argument(..., help="candidate identifiers"),
                      campaign: str = typer.Option(...), reason: Optional[str] = typer.Option(None, help="why (kept in the audit)"),
                      operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP),
                      url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Retire candidates: never proposed again. Their measurements, proposals and predictions stay in the history."""
    user = operator_of(operator)
    with store(url) as session:
        retired = [c.identifier for c in service.retire_candidates(session, service.get_campaign(session, campaign),
                                                                   identifiers, user, reason)]
    if json_output:
        print_json({"retired": retired, "by": user})
    else:
        console.print(f"retired {len(retired)} candidate(s) of {campaign!r}: {', '.join(retired)}")
