"""The service layer: every write the CLI, the flows and the web app make goes through these functions.

Each function takes an open ``Session`` and neither commits nor rolls back: the caller wraps a unit of work
in ``db.engine.session_scope`` so that it lands whole or not at all. Input arrives as validated models from
``db.schemas``; anything the store refuses raises ``StoreError`` with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from sqlalchemy import func, or_
from sqlmodel import Session, select

from db.engine import NotFoundError, StoreError
from db.schemas import CampaignIn, CandidateIn, DecisionIn, MeasurementIn
from db.tables import (AuditEvent, Campaign, CampaignPrior, Candidate, IterationRun, Measurement, ModelVersion, Prediction,
                       PriorMaterial, PriorSet, ProposalBatch, ProposalItem, utc_now)
from e2t_al.acquisition import CHOSEN_BY
from e2t_al.units import UnitError, convert

DUPLICATE_WINDOW = timedelta(minutes=1)
OPEN_STATUSES = ("proposed", "approved")  # then: rejected | measured | failed (approved, but could not be measured)


class DuplicateMeasurementError(StoreError):
    """The same candidate, value and operator were entered within a minute: probably entered twice."""


# The proposal state machine, shared by the CLI, the API, the pages and the flows: action → {from state: to state}.
# A measurement that names no proposal item is an unplanned measurement (allowed; linked to no proposal).
PROPOSAL_TRANSITIONS = {"approved": {"proposed": "approved"}, "rejected": {"proposed": "rejected"},
                        "measured": {"approved": "measured"}, "failed": {"approved": "failed"}}


class IllegalTransition(StoreError):
    """A proposal item cannot take this step from its current state (``current``); nothing is written."""

    def __init__(self, item_id: int, current: str, action: str):
        allowed = [state for state, targets in PROPOSAL_TRANSITIONS.items() if current in targets]
        super().__init__(f"proposal item {item_id} is {current}: it cannot become {action}"
                         + (f" (from {current} it can become {' or '.join(allowed)})" if allowed else " (a final state)"))
        self.item_id, self.current, self.action = item_id, current, action


class NotAllowed(StoreError):
    """The acting person's role does not allow this write."""


def advance(item: ProposalItem, action: str) -> None:
    """Move ``item`` along the state machine, or raise ``IllegalTransition`` naming its current state."""
    if item.status not in PROPOSAL_TRANSITIONS[action]:
        raise IllegalTransition(item.id, item.status, action)
    item.status = PROPOSAL_TRANSITIONS[action][item.status]


def audit(session: Session, actor: str, action: str, campaign: Campaign | None = None, **detail) -> None:
    session.add(AuditEvent(campaign_id=campaign.id if campaign else None, actor=actor, action=action, detail=detail))


# ---- campaigns ---------------------------------------------------------------------------------------------
def create_campaign(session: Session, data: CampaignIn, actor: str = "system") -> Campaign:
    if session.exec(select(Campaign).where(Campaign.name == data.name)).first():
        raise StoreError(f"a campaign named {data.name!r} already exists")
    campaign = Campaign(**data.model_dump())
    session.add(campaign)
    session.flush()
    audit(session, actor, "campaign.create", campaign, name=data.name)
    return campaign


def get_campaign(session: Session, name: str) -> Campaign:
    campaign = session.exec(select(Campaign).where(Campaign.name == name)).first()
    if campaign is None:
        known = session.exec(select(Campaign.name)).all()
        raise NotFoundError(f"no campaign named {name!r} (campaigns: {', '.join(known) or 'none yet'})")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(Campaign.id)))


# ---- candidates --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateRow:
    """A validated candidate ready to store: its input and the element domain parsed from its representation."""

    line: str  # where it came from: "line 7", "perov_12.cif", "hoip #3"
    data: CandidateIn
    element_domain: str


@dataclass(frozen=True)
class RowProblem:
    line: str
    identifier: str
    reason: str

    def __str__(self) -> str:
        return f"{self.line} ({self.identifier or 'no identifier'}): {self.reason}"


@dataclass
class ImportRefused(StoreError):
    """An import with bad rows: nothing was written. ``problems`` lists every bad row with its line and reason."""

    problems: list[RowProblem] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"import refused, nothing written: {len(self.problems)} bad row(s)"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def import_candidates(session: Session, campaign: Campaign, rows: Iterable[CandidateRow], problems: Iterable[RowProblem] = (),
                      actor: str = "system") -> list[Candidate]:
    """Add every row, or none: rows that failed parsing (``problems``), duplicate identifiers within the import
    and identifiers already in the campaign all refuse the whole import with ``ImportRefused``."""
    rows, problems = list(rows), list(problems)
    existing = set(session.exec(select(Candidate.identifier).where(Candidate.campaign_id == campaign.id)))
    kind = campaign_representation(session, campaign) or (rows[0].data.representation_kind if rows else None)
    seen: dict[str, str] = {}
    for row in rows:
        identifier = row.data.identifier
        if row.data.representation_kind != kind:
            problems.append(RowProblem(row.line, identifier, f"a {row.data.representation_kind} candidate, but this campaign's "
                                       f"candidates are {kind} (one representation per campaign)"))
        elif identifier in existing:
            problems.append(RowProblem(row.line, identifier, "already a candidate of this campaign"))
        elif identifier in seen:
            problems.append(RowProblem(row.line, identifier, f"duplicate identifier (also {seen[identifier]})"))
        seen.setdefault(identifier, row.line)
    if problems:
        raise ImportRefused(problems=sorted(problems, key=lambda p: _line_order(p.line)))
    added = []
    for row in rows:
        candidate = Candidate(campaign_id=campaign.id, element_domain=row.element_domain, **row.data.model_dump())
        session.add(candidate)
        added.append(candidate)
    session.flush()
    audit(session, actor, "candidates.import", campaign, count=len(added))
    return added


def campaign_representation(session: Session, campaign: Campaign) -> str | None:
    """cif, smiles or formula: the kind of the campaign's candidates, else of its prior sets (None: nothing yet)."""
    kind = session.exec(select(Candidate.representation_kind).where(Candidate.campaign_id == campaign.id).limit(1)).first()
    if kind is None:
        kind = session.exec(select(PriorSet.representation_kind).join(CampaignPrior, CampaignPrior.prior_set_id == PriorSet.id)
                            .where(CampaignPrior.campaign_id == campaign.id).limit(1)).first()
    return kind


def _line_order(line: str) -> tuple:
    digits = "".join(c for c in line if c.isdigit())
    return (int(digits) if digits else 0, line)


def list_candidates(session: Session, campaign: Campaign, element_domain: str | None = None,
                    include_retired: bool = True) -> list[Candidate]:
    """The campaign's candidates in the order imported; ``element_domain`` in any element order (``Cs-Pb-I``
    finds ``Cs-I-Pb``)."""
    query = select(Candidate).where(Candidate.campaign_id == campaign.id)
    if element_domain:
        query = query.where(Candidate.element_domain.in_(matching_domains(session, campaign, element_domain)))
    if not include_retired:
        query = query.where(Candidate.retired_at.is_(None))
    return list(session.exec(query.order_by(Candidate.id)))


def retire_candidates(session: Session, campaign: Campaign, identifiers: list[str], actor: str, reason: str | None = None) -> list[Candidate]:
    """Retired candidates are never proposed again; their measurements, proposals and predictions stay. All
    named candidates must exist and still be active, or nothing is retired."""
    candidates, problems = [], []
    for identifier in dict.fromkeys(identifiers):
        candidate = session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id,
                                                         Candidate.identifier == identifier)).first()
        if candidate is None:
            problems.append(f"no candidate {identifier!r} in campaign {campaign.name!r}")
        elif candidate.retired_at is not None:
            problems.append(f"{identifier!r} was already retired by {candidate.retired_by}")
        candidates.append(candidate)
    if problems:
        raise StoreError("nothing retired: " + "; ".join(problems))
    for candidate in candidates:
        candidate.retired_at, candidate.retired_by, candidate.retirement_reason = utc_now(), actor, reason
        session.add(candidate)
    audit(session, actor, "candidates.retire", campaign, candidates=[c.identifier for c in candidates], reason=reason)
    return candidates


def count_candidates(session: Session, campaign: Campaign) -> int:
    return session.exec(select(func.count()).select_from(Candidate).where(Candidate.campaign_id == campaign.id)).one()


def get_candidate(session: Session, campaign: Campaign, identifier: str) -> Candidate:
    candidate = session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id,
                                                     Candidate.identifier == identifier)).first()
    if candidate is None:
        raise NotFoundError(f"no candidate {identifier!r} in campaign {campaign.name!r}")
    return candidate


# ---- measurements ------------------------------------------------------------------------------------------
def add_measurement(session: Session, campaign: Campaign, data: MeasurementIn, allow_duplicate: bool = False,
                    corrects: Measurement | None = None) -> Measurement:
    """Append one measurement. Refused: unknown candidate, a unit of another dimension, a value outside the
    campaign's valid range; flagged (``DuplicateMeasurementError``): the same value by the same operator
    within a minute. An approved proposal of the candidate becomes ``measured``."""
    candidate = get_candidate(session, campaign, data.candidate)
    value = value_in_campaign_unit(campaign, data)
    now = utc_now()
    if not allow_duplicate and corrects is None:
        recent = session.exec(select(Measurement).where(
            Measurement.candidate_id == candidate.id, Measurement.operator == data.operator,
            Measurement.status == "valid", Measurement.recorded_at >= now - DUPLICATE_WINDOW)).all()
        if any(_same_value(m.value_in_campaign_unit, value) for m in recent):
            raise DuplicateMeasurementError(_duplicate_reason(data))
    item = _proposal_item_for(session, campaign, candidate, data.proposal_item_id)
    measurement = Measurement(candidate_id=candidate.id, value=data.value, unit=data.unit, value_in_campaign_unit=value,
                              uncertainty=data.uncertainty, method=data.method, operator=data.operator,
                              measured_at=data.measured_at or now, recorded_at=now, notes=data.notes,
                              corrects_id=corrects.id if corrects else None, proposal_item_id=item.id if item else None)
    session.add(measurement)
    if item is not None:
        advance(item, "measured")
        session.add(item)
    session.flush()
    audit(session, data.operator, "measurement.correct" if corrects else "measurement.add", campaign,
          measurement=measurement.id, candidate=data.candidate, value=data.value, unit=data.unit)
    return measurement


def value_in_campaign_unit(campaign: Campaign, data: MeasurementIn) -> float:
    """The value in the campaign's unit, checked against its valid range; ``StoreError`` with the reason."""
    try:
        value = convert(data.value, data.unit, campaign.unit)
    except UnitError as exc:
        raise StoreError(f"{data.candidate}: {exc} (campaign unit {campaign.unit!r})") from exc
    low, high = campaign.valid_min, campaign.valid_max
    if (low is not None and value < low) or (high is not None and value > high):
        raise StoreError(f"{data.candidate}: {data.value} {data.unit} is outside the valid range "
                         f"[{low}, {high}] {campaign.unit} of {campaign.target_property}")
    return value


def _same_value(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def _duplicate_reason(data: MeasurementIn) -> str:
    return (f"{data.candidate}: {data.value} {data.unit} by {data.operator} was already entered within the last minute "
            "(allow duplicates, e.g. --allow-duplicate, to keep both)")


def _may_measure(item_id: int, item: ProposalItem | None, status: str | None, candidate: Candidate) -> None:
    """A measurement may name proposal item ``item_id`` (now in ``status``) only if it is the candidate's, approved."""
    if item is None or item.candidate_id != candidate.id:
        raise StoreError(f"proposal item {item_id} is not a proposal of candidate {candidate.identifier!r}")
    if status not in PROPOSAL_TRANSITIONS["measured"]:
        raise IllegalTransition(item.id, status, "measured")


def _proposal_item_for(session: Session, campaign: Campaign, candidate: Candidate, item_id: int | None) -> ProposalItem | None:
    if item_id is not None:
        item = session.get(ProposalItem, item_id)
        _may_measure(item_id, item, item.status if item else None, candidate)
        return item
    return session.exec(select(ProposalItem).join(ProposalBatch).where(
        ProposalBatch.campaign_id == campaign.id, ProposalItem.candidate_id == candidate.id,
        ProposalItem.status == "approved").order_by(ProposalItem.id.desc())).first()


def import_measurements(session: Session, campaign: Campaign, rows: list[tuple[str, MeasurementIn]],
                        problems: Iterable[RowProblem] = (), allow_duplicate: bool = False,
                        valid_rows_only: bool = False) -> list[Measurement]:
    """Add every row, or none: all rows are tried so that every refusal is reported (``ImportRefused``); the
    caller's transaction then rolls back the rows that were fine. ``valid_rows_only`` (asked for explicitly, by
    the CLI's ``--valid-rows-only`` and the web's "import the valid rows"): the refused rows are left out instead."""
    problems = list(problems)
    added = []
    for line, data in rows:
        try:
            if valid_rows_only:
                with session.begin_nested():
                    added.append(add_measurement(session, campaign, data, allow_duplicate=allow_duplicate))
            else:
                added.append(add_measurement(session, campaign, data, allow_duplicate=allow_duplicate))
        except StoreError as exc:
            problems.append(RowProblem(line, data.candidate, str(exc)))
    if problems and not valid_rows_only:
        raise ImportRefused(problems=sorted(problems, key=lambda p: _line_order(p.line)))
    return added


@dataclass(frozen=True)
class RowCheck:
    """What the store says about one row of a measurement import: ``reason`` is None when it would be written."""

    line: str
    candidate: str
    value: float | None
    unit: str | None
    reason: str | None


def check_measurement_rows(session: Session, campaign: Campaign, rows: list[tuple[str, MeasurementIn]],
                           problems: Iterable[RowProblem] = ()) -> list[RowCheck]:
    """What ``import_measurements`` would say about each row, in line order, without writing: the same checks
    (candidate, unit, valid range, proposal state, duplicates within a minute and within the file) made in bulk,
    a few queries for the whole file. Run it in ``db.engine.read_only``: it never waits for the writers."""
    checks = [RowCheck(p.line, p.identifier, None, None, p.reason) for p in problems]
    candidates = {c.identifier: c for c in session.exec(select(Candidate).where(Candidate.campaign_id == campaign.id))}
    item_ids = {data.proposal_item_id for _, data in rows if data.proposal_item_id is not None}
    items = {i.id: i for i in session.exec(select(ProposalItem).where(ProposalItem.id.in_(item_ids)))} if item_ids else {}
    status = {i: item.status for i, item in items.items()}  # as the rows above would leave them
    recent: dict[tuple[int, str], list[float]] = {}
    for m in session.exec(select(Measurement).join(Candidate).where(
            Candidate.campaign_id == campaign.id, Measurement.status == "valid", Measurement.recorded_at >= utc_now() - DUPLICATE_WINDOW)):
        recent.setdefault((m.candidate_id, m.operator), []).append(m.value_in_campaign_unit)
    for line, data in rows:
        try:
            candidate = candidates.get(data.candidate)
            if candidate is None:
                raise NotFoundError(f"no candidate {data.candidate!r} in campaign {campaign.name!r}")
            value = value_in_campaign_unit(campaign, data)
            if data.proposal_item_id is not None:
                item = items.get(data.proposal_item_id)
                _may_measure(data.proposal_item_id, item, status.get(data.proposal_item_id), candidate)
                status[item.id] = "measured"  # a second row for the same item is refused, as the import would
            earlier = recent.setdefault((candidate.id, data.operator), [])
            if any(_same_value(v, value) for v in earlier):
                raise DuplicateMeasurementError(_duplicate_reason(data))
            earlier.append(value)
            checks.append(RowCheck(line, data.candidate, data.value, data.unit, None))
        except StoreError as exc:
            checks.append(RowCheck(line, data.candidate, data.value, data.unit, str(exc)))
    return sorted(checks, key=lambda c: _line_order(c.line))


def get_measurement(session: Session, campaign: Campaign, measurement_id: int) -> Measurement:
    measurement = session.get(Measurement, measurement_id)
    candidate = session.get(Candidate, measurement.candidate_id) if measurement else None
    if candidate is None or candidate.campaign_id != campaign.id:
        raise NotFoundError(f"no measurement {measurement_id} in campaign {campaign.name!r}")
    return measurement


def campaign_of_measurement(session: Session, measurement_id: int) -> Campaign:
    measurement = session.get(Measurement, measurement_id)
    if measurement is None:
        raise NotFoundError(f"no measurement {measurement_id}")
    return session.get(Campaign, session.get(Candidate, measurement.candidate_id).campaign_id)


def correct_measurement(session: Session, campaign: Campaign, measurement_id: int, data: MeasurementIn) -> Measurement:
    """A new measurement that supersedes ``measurement_id``; the old row stays, marked ``superseded``."""
    old = get_measurement(session, campaign, measurement_id)
    if old.status != "valid":
        raise StoreError(f"measurement {measurement_id} is {old.status}; only a valid measurement can be corrected")
    if session.get(Candidate, old.candidate_id).identifier != data.candidate:
        raise StoreError(f"a correction of measurement {measurement_id} must be of the same candidate")
    old.status = "superseded"
    session.add(old)
    return add_measurement(session, campaign, data.model_copy(update={"proposal_item_id": old.proposal_item_id}), corrects=old)


def retract_measurement(session: Session, campaign: Campaign, measurement_id: int, actor: str, reason: str,
                        may_retract_any: bool = True) -> Measurement:
    """Retract a measurement (who, when and why are kept). Without ``may_retract_any`` (the web's experimentalists)
    only the actor's own measurements; reviewers and admins, and the CLI run by the store's operator, any."""
    measurement = get_measurement(session, campaign, measurement_id)
    if not may_retract_any and measurement.operator != actor:
        raise NotAllowed(f"measurement {measurement_id} was entered by {measurement.operator}: an experimentalist retracts "
                         "only their own measurements; ask a reviewer")
    if measurement.status != "valid":
        raise StoreError(f"measurement {measurement_id} is already {measurement.status}")
    if not reason.strip():
        raise StoreError("a retraction needs a reason")
    measurement.status, measurement.retracted_by, measurement.retracted_at = "retracted", actor, utc_now()
    measurement.retraction_reason = reason.strip()
    session.add(measurement)
    audit(session, actor, "measurement.retract", campaign, measurement=measurement_id, reason=reason.strip())
    return measurement


def _measurements_of(campaign: Campaign, include_history: bool, candidate: Candidate | None):
    where = [Candidate.campaign_id == campaign.id]
    if candidate is not None:
        where.append(Measurement.candidate_id == candidate.id)
    if not include_history:
        where.append(Measurement.status == "valid")
    return where


def list_measurements(session: Session, campaign: Campaign, include_history: bool = False,
                      candidate: Candidate | None = None, newest_first: bool = False, limit: int | None = None,
                      offset: int = 0) -> list[tuple[Measurement, str]]:
    """(measurement, candidate identifier) in the order entered (or ``newest_first``), of the campaign or of one
    ``candidate``; only valid ones unless ``include_history``; ``limit``/``offset``: one page of them."""
    query = (select(Measurement, Candidate.identifier).join(Candidate).where(*_measurements_of(campaign, include_history, candidate))
             .order_by(Measurement.id.desc() if newest_first else Measurement.id).offset(offset).limit(limit))
    return list(session.exec(query))


def count_measurements(session: Session, campaign: Campaign, include_history: bool = False) -> int:
    return session.exec(select(func.count()).select_from(Measurement).join(Candidate)
                        .where(*_measurements_of(campaign, include_history, None))).one()


def measurement_values(session: Session, campaign: Campaign) -> list[tuple[str, float, int | None, datetime]]:
    """(candidate identifier, value in the campaign's unit, proposal item or None, recorded at) of the campaign's valid
    measurements in the order entered: ``list_measurements``'s rows as plain columns, for summaries on every view."""
    return list(session.exec(select(Candidate.identifier, Measurement.value_in_campaign_unit, Measurement.proposal_item_id,
                                    Measurement.recorded_at).join(Candidate)
                             .where(*_measurements_of(campaign, False, None)).order_by(Measurement.id)))


def measured_values(session: Session, campaign: Campaign) -> dict[str, float]:
    """Candidate identifier → mean of its valid measurements, in the campaign's unit: the support set's targets."""
    rows = session.exec(select(Candidate.identifier, func.avg(Measurement.value_in_campaign_unit)).join(Measurement)
                        .where(Candidate.campaign_id == campaign.id, Measurement.status == "valid")
                        .group_by(Candidate.identifier)).all()
    return {identifier: float(value) for identifier, value in rows}


# ---- model versions and iterations -------------------------------------------------------------------------
def checksum(path: str | Path) -> str:
    """SHA-256 of a checkpoint file, or of every file in a checkpoint folder (names and bytes, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def record_model_version(session: Session, campaign: Campaign, kind: str, checkpoint: str | Path,
                         measurement_ids: list[int], metrics: dict) -> ModelVersion:
    version = ModelVersion(campaign_id=campaign.id, kind=kind, checkpoint_path=str(checkpoint),
                           checkpoint_sha256=checksum(checkpoint), measurement_ids=sorted(measurement_ids), metrics=metrics)
    session.add(version)
    session.flush()
    return version


def latest_model_version(session: Session, campaign: Campaign) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.campaign_id == campaign.id)
                        .order_by(ModelVersion.id.desc())).first()


def record_predictions(session: Session, version: ModelVersion, candidate_ids: list[int], mean: list[float],
                       std: list[float], novelty: list[float]) -> int:
    """What ``version`` predicted for every candidate of the pool it scored; returns how many rows."""
    session.add_all([Prediction(model_version_id=version.id, candidate_id=c, mean=m, std=s, novelty=n)
                     for c, m, s, n in zip(candidate_ids, mean, std, novelty, strict=True)])
    session.flush()
    return len(candidate_ids)


def latest_predictions(session: Session, campaign: Campaign) -> dict[int, Prediction]:
    """Candidate id → its prediction by the newest model version that scored the pool (empty before any)."""
    version = session.exec(select(ModelVersion.id).join(Prediction, Prediction.model_version_id == ModelVersion.id)
                           .where(ModelVersion.campaign_id == campaign.id).order_by(ModelVersion.id.desc())).first()
    if version is None:
        return {}
    return {p.candidate_id: p for p in session.exec(select(Prediction).where(Prediction.model_version_id == version))}


def prediction_history(session: Session, candidate: Candidate) -> list[tuple[Prediction, ModelVersion]]:
    """Every prediction made for ``candidate``, oldest model version first."""
    return list(session.exec(select(Prediction, ModelVersion).join(ModelVersion)
                             .where(Prediction.candidate_id == candidate.id).order_by(ModelVersion.id)))


def start_iteration(session: Session, campaign: Campaign, iteration: int, flow_run_id: str | None = None) -> IterationRun:
    """The run record of iteration ``iteration``: a re-run of the same iteration reuses it (never a second one)."""
    run = session.exec(select(IterationRun).where(IterationRun.campaign_id == campaign.id,
                                                  IterationRun.iteration == iteration)).first()
    if run is None:
        run = IterationRun(campaign_id=campaign.id, iteration=iteration)
    run.flow_run_id, run.status, run.started_at, run.finished_at, run.message = flow_run_id, "running", utc_now(), None, None
    session.add(run)
    session.flush()
    return run


def finish_iteration(session: Session, run_id: int, status: str, timings: dict | None = None, message: str | None = None) -> IterationRun:
    run = session.get(IterationRun, run_id)
    run.status, run.finished_at, run.message = status, utc_now(), message
    run.timings = dict(timings or {})
    session.add(run)
    return run


def iteration_runs(session: Session, campaign: Campaign) -> list[IterationRun]:
    return list(session.exec(select(IterationRun).where(IterationRun.campaign_id == campaign.id).order_by(IterationRun.iteration)))


def completed_iterations(session: Session, campaign: Campaign) -> int:
    return session.exec(select(func.count()).select_from(IterationRun).where(
        IterationRun.campaign_id == campaign.id, IterationRun.status == "completed")).one()


# ---- proposals ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProposedCandidate:
    candidate_id: int
    predicted_mean: float
    predicted_std: float
    acquisition_value: float
    novelty: float
    chosen_by: str = CHOSEN_BY[1]  # "acquisition", or "highest mean": the place went to the highest predicted mean


def record_proposal(session: Session, campaign: Campaign, items: list[ProposedCandidate], acquisition: str,
                    iteration_run: IterationRun | None = None, model_version: ModelVersion | None = None) -> ProposalBatch:
    """Write a whole batch (ranked in the given order). An iteration has at most one batch: recording it again
    returns the batch already there, so a re-run never duplicates a proposal."""
    if iteration_run is not None:
        existing = session.exec(select(ProposalBatch).where(ProposalBatch.iteration_run_id == iteration_run.id)).first()
        if existing is not None:
            return existing
    if len({item.candidate_id for item in items}) != len(items):
        raise StoreError("a proposal batch lists the same candidate twice")
    unknown = sorted({item.chosen_by for item in items} - set(CHOSEN_BY))
    if unknown:
        raise StoreError(f"a proposal's chosen_by must be one of {', '.join(map(repr, CHOSEN_BY))}, not {', '.join(map(repr, unknown))}")
    batch = ProposalBatch(campaign_id=campaign.id, acquisition=acquisition,
                          iteration_run_id=iteration_run.id if iteration_run else None,
                          model_version_id=model_version.id if model_version else None)
    session.add(batch)
    session.flush()
    for rank, item in enumerate(items, start=1):
        candidate = session.get(Candidate, item.candidate_id)
        if candidate is None or candidate.campaign_id != campaign.id:
            raise StoreError(f"candidate id {item.candidate_id} is not in campaign {campaign.name!r}")
        session.add(ProposalItem(batch_id=batch.id, rank=rank, **item.__dict__))
    session.flush()
    audit(session, "assistant", "proposal.create", campaign, batch=batch.id, size=len(items))
    return batch


def proposal_batches(session: Session, campaign: Campaign) -> list[ProposalBatch]:
    return list(session.exec(select(ProposalBatch).where(ProposalBatch.campaign_id == campaign.id).order_by(ProposalBatch.id)))


def proposal_items(session: Session, campaign: Campaign, statuses: Iterable[str] | None = None,
                   batch_id: int | None = None) -> list[tuple[ProposalItem, Candidate]]:
    query = (select(ProposalItem, Candidate).join(ProposalBatch).join(Candidate, ProposalItem.candidate_id == Candidate.id)
             .where(ProposalBatch.campaign_id == campaign.id))
    if statuses is not None:
        query = query.where(ProposalItem.status.in_(list(statuses)))
    if batch_id is not None:
        query = query.where(ProposalItem.batch_id == batch_id)
    return list(session.exec(query.order_by(ProposalItem.batch_id, ProposalItem.rank)))


def open_proposals(session: Session, campaign: Campaign) -> list[tuple[ProposalItem, Candidate]]:
    """Proposals still waiting for a decision or a measurement: while any exist, a batch is open."""
    return proposal_items(session, campaign, statuses=OPEN_STATUSES)


def decide(session: Session, campaign: Campaign, item_id: int, decision: DecisionIn) -> ProposalItem:
    item = session.get(ProposalItem, item_id)
    batch = session.get(ProposalBatch, item.batch_id) if item else None
    if batch is None or batch.campaign_id != campaign.id:
        raise NotFoundError(f"no proposal item {item_id} in campaign {campaign.name!r}")
    advance(item, decision.decision)
    item.decided_by, item.decided_at, item.comment = decision.user, utc_now(), decision.comment
    session.add(item)
    audit(session, decision.user, f"proposal.{decision.decision}", campaign, item=item_id, comment=decision.comment)
    return item


def fail_proposal(session: Session, campaign: Campaign, item_id: int, actor: str, reason: str) -> ProposalItem:
    """An approved proposal that could not be measured (no sample, failed synthesis): closed, with the reason."""
    item = session.get(ProposalItem, item_id)
    batch = session.get(ProposalBatch, item.batch_id) if item else None
    if batch is None or batch.campaign_id != campaign.id:
        raise NotFoundError(f"no proposal item {item_id} in campaign {campaign.name!r}")
    advance(item, "failed")
    item.comment = reason
    session.add(item)
    audit(session, actor, "proposal.failed", campaign, item=item_id, reason=reason)
    return item


def audit_events(session: Session, campaign: Campaign | None = None, limit: int = 500) -> list[AuditEvent]:
    """Newest first; a campaign's events, or every event."""
    query = select(AuditEvent)
    if campaign is not None:
        query = query.where(AuditEvent.campaign_id == campaign.id)
    return list(session.exec(query.order_by(AuditEvent.id.desc()).limit(limit)))


def get_proposal_item(session: Session, item_id: int) -> tuple[ProposalItem, Campaign]:
    item = session.get(ProposalItem, item_id)
    if item is None:
        raise NotFoundError(f"no proposal item {item_id}")
    return item, session.get(Campaign, session.get(ProposalBatch, item.batch_id).campaign_id)


def decide_all(session: Session, campaign: Campaign, decision: DecisionIn) -> int:
    """The same decision on every proposal waiting for one; returns how many."""
    waiting = proposal_items(session, campaign, statuses=["proposed"])
    for item, _ in waiting:
        decide(session, campaign, item.id, decision)
    return len(waiting)


def approve_all(session: Session, campaign: Campaign, user: str, comment: str | None = None) -> int:
    """Approve every proposal waiting for a decision (unattended campaigns); returns how many."""
    return decide_all(session, campaign, DecisionIn(decision="approved", user=user, comment=comment))


# ---- prior knowledge ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriorEntry:
    """One prior material as a campaign sees it: its value in the campaign's unit and where it came from."""

    identifier: str
    representation_kind: str
    representation: str
    element_domain: str
    value: float  # campaign unit
    source: str  # the prior set's name, or "campaign <name>"


def store_prior_set(session: Session, dataset: str, target: str, unit: str, kind: str, rows: list[CandidateRow],
                    values: list[float], provenance: dict) -> PriorSet:
    """The prior set with these materials and values, stored once: an identical one (same SHA-256 of its
    content) already in the store is returned instead of a copy."""
    digest = hashlib.sha256(repr((dataset, target, unit, kind)).encode())
    for row, value in zip(rows, values):
        digest.update(repr((row.data.identifier, row.data.representation, row.element_domain, float(value))).encode())
    content = digest.hexdigest()
    existing = session.exec(select(PriorSet).where(PriorSet.content_sha256 == content)).first()
    if existing is not None:
        return existing
    prior = PriorSet(name=f"{dataset}/{target}@{content[:10]}", dataset=dataset, target_property=target, unit=unit,
                     representation_kind=kind, content_sha256=content, provenance=provenance)
    session.add(prior)
    session.flush()
    session.add_all([PriorMaterial(prior_set_id=prior.id, identifier=row.data.identifier, representation_kind=kind,
                                   representation=row.data.representation, element_domain=row.element_domain,
                                   value=float(value)) for row, value in zip(rows, values)])
    session.flush()
    return prior


def link_prior(session: Session, campaign: Campaign, prior_set: PriorSet | None = None, source_campaign: Campaign | None = None,
               excluded_domains: Iterable[str] = (), excluded_identifiers: Iterable[str] = (), actor: str = "system") -> CampaignPrior:
    if (prior_set is None) == (source_campaign is None):
        raise StoreError("a prior reference names one prior set or one earlier campaign")
    if source_campaign is not None and source_campaign.id == campaign.id:
        raise StoreError("a campaign cannot be its own prior knowledge")
    link = CampaignPrior(campaign_id=campaign.id, prior_set_id=prior_set.id if prior_set else None,
                         source_campaign_id=source_campaign.id if source_campaign else None,
                         excluded_domains=sorted(excluded_domains), excluded_identifiers=sorted(excluded_identifiers))
    session.add(link)
    session.flush()
    audit(session, actor, "prior.link", campaign, prior=prior_set.name if prior_set else f"campaign {source_campaign.name}",
          excluded_domains=link.excluded_domains, excluded=len(link.excluded_identifiers))
    return link


def campaign_priors(session: Session, campaign: Campaign) -> list[tuple[CampaignPrior, str, int]]:
    """The campaign's prior references: (link, source name, number of materials it contributes, as ``prior_entries``
    counts them). Dashboards call it on every view, so it counts per domain in SQL and looks up only the identifiers
    the link leaves out, the campaign's own candidates as a subquery (a prior set's rows are thousands; its CIF texts
    megabytes; an index covers the counts)."""
    own = select(Candidate.identifier).where(Candidate.campaign_id == campaign.id).correlate(None)  # never the outer query
    summary = []
    for link in session.exec(select(CampaignPrior).where(CampaignPrior.campaign_id == campaign.id).order_by(CampaignPrior.id)):
        if link.prior_set_id is not None:
            identifier, domain, where = PriorMaterial.identifier, PriorMaterial.element_domain, [PriorMaterial.prior_set_id == link.prior_set_id]
        else:
            identifier, domain = Candidate.identifier, Candidate.element_domain
            where = [Candidate.campaign_id == link.source_campaign_id,
                     Candidate.identifier.in_(list(measured_values(session, session.get(Campaign, link.source_campaign_id))))]
        excluded_domains = set(link.excluded_domains)
        per_domain = session.exec(select(domain, func.count()).where(*where).group_by(domain)).all()
        kept_domains = {d for d, _ in per_domain if not _in_domains(d, excluded_domains)}
        left_out = or_(identifier.in_(own), identifier.in_(link.excluded_identifiers)) if link.excluded_identifiers else identifier.in_(own)
        dropped = session.exec(select(func.count()).select_from(domain.class_).where(
            *where, left_out, domain.in_(list(kept_domains)))).one() if kept_domains else 0
        summary.append((link, _prior_source_name(session, link), sum(n for d, n in per_domain if d in kept_domains) - dropped))
    return summary


def prior_entries(session: Session, campaign: Campaign) -> list[PriorEntry]:
    """Every prior material the campaign's model may learn from, values in the campaign's unit; materials that
    are also candidates of the campaign (same identifier) are left out, the campaign's own data wins."""
    own = set(session.exec(select(Candidate.identifier).where(Candidate.campaign_id == campaign.id)))
    entries: dict[str, PriorEntry] = {}
    for link in session.exec(select(CampaignPrior).where(CampaignPrior.campaign_id == campaign.id).order_by(CampaignPrior.id)):
        for entry in _prior_entries(session, campaign, link):
            if entry.identifier not in own:
                entries.setdefault(entry.identifier, entry)
    return list(entries.values())


def _prior_source_name(session: Session, link: CampaignPrior) -> str:
    if link.prior_set_id is not None:
        return session.get(PriorSet, link.prior_set_id).name
    return f"campaign {session.get(Campaign, link.source_campaign_id).name}"


def _keeps(link: CampaignPrior):
    """The rule ``(identifier, domain) → bool`` of what a prior link gives its campaign: not an excluded identifier,
    not in an excluded domain (``campaign_priors`` counts by the same rule in SQL)."""
    excluded, domains = set(link.excluded_identifiers), set(link.excluded_domains)
    return lambda identifier, domain: identifier not in excluded and not _in_domains(domain, domains)


def _prior_entries(session: Session, campaign: Campaign, link: CampaignPrior) -> list[PriorEntry]:
    kept = _keeps(link)
    name = _prior_source_name(session, link)
    if link.prior_set_id is not None:
        prior = session.get(PriorSet, link.prior_set_id)
        rows = session.exec(select(PriorMaterial).where(PriorMaterial.prior_set_id == prior.id).order_by(PriorMaterial.id))
        factor = _unit_factor(prior.unit, campaign.unit, name)
        return [PriorEntry(m.identifier, m.representation_kind, m.representation, m.element_domain, factor(m.value), name)
                for m in rows if kept(m.identifier, m.element_domain)]
    source = session.get(Campaign, link.source_campaign_id)
    values = measured_values(session, source)
    factor = _unit_factor(source.unit, campaign.unit, name)
    return [PriorEntry(c.identifier, c.representation_kind, c.representation, c.element_domain, factor(values[c.identifier]), name)
            for c in list_candidates(session, source) if c.identifier in values and kept(c.identifier, c.element_domain)]


def _unit_factor(unit: str, campaign_unit: str, source: str):
    try:
        convert(1.0, unit, campaign_unit)
    except UnitError as exc:
        raise StoreError(f"prior {source} is in {unit}, which cannot be converted to the campaign's {campaign_unit}") from exc
    return lambda value: float(convert(value, unit, campaign_unit))


def domain_elements(domain: str) -> frozenset[str]:
    """An element domain as the set of its parts: ``Cs-Pb-I`` and ``Cs-I-Pb`` are the same domain."""
    return frozenset(part.strip() for part in domain.split("-") if part.strip())


def _in_domains(domain: str, domains: set[str]) -> bool:
    """``domain`` lies in one of ``domains``: it holds all of that domain's elements (``Ge-F`` for a Ge-F
    perovskite, ``O`` for every oxide, as a data set's hold-out of that domain key)."""
    elements = domain_elements(domain)
    return any(domain_elements(d) <= elements for d in domains)


def matching_domains(session: Session, campaign: Campaign, domain: str) -> list[str]:
    """The campaign's stored domain names equal to ``domain`` in any element order."""
    stored = session.exec(select(Candidate.element_domain).where(Candidate.campaign_id == campaign.id).distinct()).all()
    return sorted(d for d in stored if domain_elements(d) == domain_elements(domain))
