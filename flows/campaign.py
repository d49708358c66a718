"""Prefect flows of the closed loop. They orchestrate only; the logic is in ``e2t_al.campaign`` and ``db.service``.

``campaign_iteration``: load state → (pre-train once) → adapt (instant, or fine-tune when enough new data
arrived) → score the pool → acquire a batch → record proposal + model version, idempotently.
``run_campaign``: N iterations of propose → auto-approve → simulated measurement.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from db import service
from db.engine import session_scope, store_engine
from db.tables import IterationRun
from e2t_al.campaign import loop
from e2t_al.campaign.reports import campaign_plots
from e2t_al.campaign.simulated_lab import SimulatedLab
from e2t_al.campaign.state import CampaignState, read_state
from e2t_al.model.ensemble import E2TEnsemble

IO_RETRIES = dict(retries=2, retry_delay_seconds=2)


# ---- tasks: each a small step around one library function --------------------------------------------------
@task(**IO_RETRIES)
def load_state(campaign: str, database_url: str | None) -> CampaignState:
    with session_scope(store_engine(database_url)) as session:
        return read_state(session, campaign)


@task(**IO_RETRIES)
def start_run(state: CampaignState, database_url: str | None) -> tuple[int, bool]:
    """The iteration's run record (reused by a re-run); True when this iteration already recorded its batch."""
    with session_scope(store_engine(database_url)) as session:
        campaign = service.get_campaign(session, state.name)
        run = service.start_iteration(session, campaign, state.iteration, str(flow_run.get_id() or ""))
        done = any(b.iteration_run_id == run.id for b in service.proposal_batches(session, campaign))
        return run.id, done


@task
def featurize(state: CampaignState) -> np.ndarray:
    return loop.pool_features(state)


@task
def train_member(state: CampaignState, features: np.ndarray, k: int):
    started = time.perf_counter()
    member = loop.train_member(state, features, k)
    get_run_logger().info(f"member {k} trained in {time.perf_counter() - started:.1f} s "
                          f"(validation RMSE {member.validation_rmse_ or float('nan'):.3f} on {member.validation_domains_})")
    return member


@task(**IO_RETRIES)
def latest_model(state: CampaignState, database_url: str | None) -> dict | None:
    with session_scope(store_engine(database_url)) as session:
        version = service.latest_model_version(session, service.get_campaign(session, state.name))
        return None if version is None else version.model_dump()


@task
def load_model(version: dict) -> E2TEnsemble:
    if service.checksum(version["checkpoint_path"]) != version["checkpoint_sha256"]:
        raise RuntimeError(f"checkpoint {version['checkpoint_path']} changed since it was recorded (SHA-256 differs)")
    return E2TEnsemble.load(version["checkpoint_path"])


@task
def fine_tune(state: CampaignState, ensemble: E2TEnsemble, features: np.ndarray, new_identifiers: list[str]) -> E2TEnsemble:
    return loop.fine_tune(state, ensemble, features, set(new_identifiers), state.folder / "models" / f"finetune_{state.iteration}")


@task
def score_and_choose(state: CampaignState, ensemble: E2TEnsemble, features: np.ndarray):
    return loop.score_and_choose(state, ensemble, features)


@task(**IO_RETRIES)
def record(state: CampaignState, run_id: int, model: dict, batch, scores: loop.PoolScores, timings: dict,
           database_url: str | None) -> int:
    """Model version, proposal batch and the completed run in one transaction: all of it lands, or none."""
    with session_scope(store_engine(database_url)) as session:
        campaign = service.get_campaign(session, state.name)
        run = session.get(IterationRun, run_id)
        version = service.record_model_version(session, campaign, model["kind"], model["path"], state.measurement_ids, model["metrics"])
        service.record_predictions(session, version, *loop.candidate_predictions(state, scores))
        proposal = service.record_proposal(session, campaign, loop.proposed_candidates(state, batch, scores),
                                           state.config.acquisition.function, iteration_run=run, model_version=version)
        service.finish_iteration(session, run_id, "completed", timings)
        return proposal.id


@task(**IO_RETRIES)
def mark_run(run_id: int, status: str, message: str, database_url: str | None) -> None:
    with session_scope(store_engine(database_url)) as session:
        service.finish_iteration(session, run_id, status, message=message)


@task
def publish(state: CampaignState, rows: list[dict], database_url: str | None) -> list[str]:
    create_table_artifact(key=f"proposal-{state.name}".lower().replace("_", "-"), table=rows,
                          description=f"Iteration {state.iteration} of {state.name}: proposed batch")
    with session_scope(store_engine(database_url)) as session:
        return [str(p) for p in campaign_plots(session, service.get_campaign(session, state.name), state.folder / "plots")]


# ---- flows -------------------------------------------------------------------------------------------------
@flow(name="campaign-iteration", log_prints=True)
def campaign_iteration(campaign: str, database_url: str | None = None) -> dict:
    """One iteration; waits (proposes nothing) while a batch is open; a re-run never duplicates a batch."""
    logger = get_run_logger()
    timings, clock = {}, time.perf_counter()
    state = load_state(campaign, database_url)
    if state.batch_open:
        logger.info(f"{campaign}: {int(state.proposed.sum())} proposals await a decision and {int(state.pending.sum())} "
                    "a measurement; not proposing again")
        return {"status": "waiting", "iteration": state.iteration}
    run_id, already_recorded = start_run(state, database_url)
    if already_recorded:
        mark_run(run_id, "completed", "batch was already recorded", database_url)
        return {"status": "completed", "iteration": state.iteration, "note": "batch was already recorded"}
    try:
        features = featurize(state)
        timings["features_s"] = time.perf_counter() - clock
        ensemble, model = adapt(state, features, database_url)
        timings["adapt_s"] = time.perf_counter() - clock - timings["features_s"]
        scores, batch = score_and_choose(state, ensemble, features)
        timings["total_s"] = time.perf_counter() - clock
        proposal_id = record(state, run_id, model, batch, scores, timings, database_url)
    except Exception as exc:
        mark_run(run_id, "failed", f"{type(exc).__name__}: {exc}", database_url)
        raise
    rows = loop.batch_table(state, batch, scores)
    logger.info(f"{campaign} iteration {state.iteration}: incumbent {batch.incumbent:.4g} (objective units), "
                f"{batch.incumbent_rule}")
    if batch.exploitation_places:
        logger.info(f"{campaign} iteration {state.iteration}: the first {batch.exploitation_places} place(s) take the "
                    f"highest predicted mean (exploit_rule {state.config.acquisition.exploit_rule})")
    if batch.untested_domains:
        logger.info(f"{campaign} iteration {state.iteration}: at most {state.config.acquisition.max_per_unmeasured_domain} "
                    f"place(s) each for the scope's domains with no measurement yet: {', '.join(batch.untested_domains)}")
    plots = publish(state, rows, database_url)
    logger.info(f"{campaign} iteration {state.iteration}: proposed " + ", ".join(f"{r['candidate']} ({r['domain']}, "
                f"{r['predicted']:.2f}±{r['std']:.2f})" for r in rows))
    return {"status": "completed", "iteration": state.iteration, "proposal_id": proposal_id, "batch": rows,
            "incumbent": {"value": batch.incumbent, "rule": batch.incumbent_rule},
            "model": model["kind"], "plots": plots, "timings": timings}


def adapt(state: CampaignState, features: np.ndarray, database_url: str | None) -> tuple[E2TEnsemble, dict]:
    """Pre-train the ensemble once (members in parallel on the task runner); afterwards the instant update,
    or a fine-tune once ``finetune_after`` measurements arrived that the current weights have not seen."""
    config = state.config
    version = latest_model(state, database_url)
    if version is None:
        members = [f.result() for f in [train_member.submit(state, features, k) for k in range(config.ensemble.members)]]
        ensemble = loop.save_ensemble(state, members, loop.pretrained_path(state))
        return ensemble, _model_record("pretrained", loop.pretrained_path(state), ensemble)
    ensemble = load_model(version)
    trained_on = version["metrics"].get("trained_on", version["measurement_ids"])
    new_ids = loop.new_measurements_since(state, trained_on)
    if config.adaptation.finetune_after and len(new_ids) >= config.adaptation.finetune_after:
        new_identifiers = _identifiers_of(state, new_ids, database_url)
        ensemble = fine_tune(state, ensemble, features, new_identifiers)
        return ensemble, _model_record("finetune", state.folder / "models" / f"finetune_{state.iteration}", ensemble, state.measurement_ids)
    return ensemble, _model_record("instant", Path(version["checkpoint_path"]), ensemble, trained_on)


def _model_record(kind: str, path: Path, ensemble: E2TEnsemble, trained_on: list[int] | None = None) -> dict:
    metrics = {"validation_rmse": float(np.sqrt(ensemble.error_floor())), "members": len(ensemble.members)}
    if trained_on is not None:
        metrics["trained_on"] = sorted(trained_on)
    return {"kind": kind, "path": str(Path(path).resolve()), "metrics": metrics}


@task(**IO_RETRIES)
def _identifiers_of(state: CampaignState, measurement_ids: list[int], database_url: str | None) -> list[str]:
    with session_scope(store_engine(database_url)) as session:
        rows = service.list_measurements(session, service.get_campaign(session, state.name))
        wanted = set(measurement_ids)
        return sorted({identifier for m, identifier in rows if m.id in wanted})


@task(**IO_RETRIES)
def approve_and_measure(campaign: str, lab: SimulatedLab, database_url: str | None) -> int:
    """Auto-approve the open batch and let the simulated lab measure it, as two recorded steps."""
    with session_scope(store_engine(database_url)) as session:
        service.approve_all(session, service.get_campaign(session, campaign), user="auto-approve", comment="simulated campaign")
    with session_scope(store_engine(database_url)) as session:
        return len(lab.measure_approved(session, service.get_campaign(session, campaign)))


@flow(name="run-campaign", log_prints=True)
def run_campaign(campaign: str, lab: SimulatedLab, iterations: int, database_url: str | None = None,
                 task_runner=None) -> list[dict]:
    """``iterations`` × (propose → auto-approve → simulated measurement)."""
    iteration = campaign_iteration.with_options(task_runner=task_runner) if task_runner is not None else campaign_iteration
    results = []
    for _ in range(iterations):
        result = iteration(campaign, database_url)
        results.append(result)
        result["measured"] = approve_and_measure(campaign, lab, database_url)
    return results
