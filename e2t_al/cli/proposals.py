"""``e2t-al proposals``: the proposed experiments of a campaign: list, approve, reject."""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from db import service
from db.schemas import DecisionIn
from e2t_al.cli.common import OPERATOR_HELP, URL_HELP, console, fail, operator_of, print_json, store

proposals_app = typer.Typer(help="Proposed experiments: list, approve, reject.", no_args_is_help=True)
STATUSES = ("proposed", "approved", "rejected", "measured", "failed")


def proposal_rows(session, campaign, statuses: list[str] | None) -> list[dict]:
    batches = {b.id: b for b in service.proposal_batches(session, campaign)}
    runs = {r.id: r.iteration for r in service.iteration_runs(session, campaign)}
    return [{"item": item.id, "batch": item.batch_id, "iteration": runs.get(batches[item.batch_id].iteration_run_id),
             "rank": item.rank, "candidate": candidate.identifier, "domain": candidate.element_domain,
             "predicted": item.predicted_mean, "std": item.predicted_std, "acquisition": item.acquisition_value,
             "chosen_by": item.chosen_by, "novelty": item.novelty, "status": item.status, "decided_by": item.decided_by,
             "decided_at": item.decided_at.isoformat() if item.decided_at else None, "comment": item.comment}
            for item, candidate in service.proposal_items(session, campaign, statuses=statuses)]


@proposals_app.command("list")
def proposals_list(campaign: str = typer.Option(...),
                   status: Optional[str] = typer.Option(None, help=f"only this status: {' | '.join(STATUSES)}"),
                   url: Optional[str] = typer.Option(None, help=URL_HELP),
                   json_output: bool = typer.Option(False, "--json", help="print JSON only")):
    """The campaign's proposals, newest batch last, with their decisions."""
    if status is not None and status not in STATUSES:
        fail(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    with store(url) as session:
        rows = proposal_rows(session, service.get_campaign(session, campaign), [status] if status else None)
    if json_output:
        print_json(rows)
        return
    table = Table("item", "iter.", "rank", "candidate", "domain", "prediction ± σ", "acquisition", "chosen by", "status", "decided by", "comment")
    for r in rows:
        table.add_row(str(r["item"]), str(r["iteration"] or ""), str(r["rank"]), r["candidate"], r["domain"],
                      f"{r['predicted']:.3f} ± {r['std']:.3f}", f"{r['acquisition']:.4g}", r["chosen_by"], r["status"], r["decided_by"] or "",
                      r["comment"] or "")
    console.print(table)


def _decide(decision: str, campaign: str, items: list[int] | None, everything: bool, comment: str | None,
            operator: str | None, url: str | None, json_output: bool) -> None:
    if bool(items) == everything:
        fail("give --item ID (repeatable) or --all")
    user = operator_of(operator)
    with store(url) as session:
        target = service.get_campaign(session, campaign)
        data = DecisionIn(decision=decision, user=user, comment=comment)
        if everything:
            decided = [item.id for item, _ in service.proposal_items(session, target, statuses=["proposed"])]
            service.decide_all(session, target, data)
        else:
            decided = [service.decide(session, target, item_id, data).id for item_id in dict.fromkeys(items)]
    if json_output:
        print_json({"decision": decision, "items": decided, "user": user})
    else:
        console.print(f"{decision} {len(decided)} proposal(s) of {campaign!r} as {user}: {', '.join(map(str, decided)) or 'none waiting'}")


@proposals_app.command("approve")
def proposals_approve(campaign: str = typer.Option(...), item: Optional[List[int]] = typer.Option(None, help="proposal item id (repeatable)"),
                      everything: bool = typer.Option(False, "--all", help="every proposal waiting for a decision"),
                      comment: Optional[str] = typer.Option(None), operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP),
                      url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Approve proposals for measurement: all named items, or none when one cannot be approved."""
    _decide("approved", campaign, item, everything, comment, operator, url, json_output)


@proposals_app.command("reject")
def proposals_reject(campaign: str = typer.Option(...), item: Optional[List[int]] = typer.Option(None, help="proposal item id (repeatable)"),
                     everything: bool = typer.Option(False, "--all", help="every proposal waiting for a decision"),
                     comment: Optional[str] = typer.Option(None, help="why (kept with the decision)"),
                     operator: Optional[str] = typer.Option(None, help=OPERATOR_HELP),
                     url: Optional[str] = typer.Option(None, help=URL_HELP), json_output: bool = typer.Option(False, "--json")):
    """Reject proposals: they are not measured, and the next iteration may propose others."""
    _decide("rejected", campaign, item, everything, comment, operator, url, json_output)

