"""A campaign as a folder of plain files, and back: ``export_campaign`` writes everything needed to reproduce its
state elsewhere, ``import_campaign`` rebuilds it in another store (or under another name).

Files (references between them use natural keys, never database ids, so that two exports of the same state are
identical byte for byte):

- ``campaign.json``: the campaign row and its config; ``manifest.json``: model versions (kind, SHA-256, metrics,
  the measurements each saw), iteration runs, prior references with their provenance, and the files' SHA-256;
- ``candidates.csv``, ``measurements.csv`` (the whole history: superseded and retracted ones too),
  ``proposals.csv`` (with decisions), ``predictions.csv`` (the latest model version's);
- ``prior/<n>.csv``: the materials of each referenced prior set; ``models/<n>/``: each model checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import Session, select

from db import service
from db.engine import StoreError
from db.schemas import CampaignIn, CandidateIn, MeasurementIn
from db.tables import (Campaign, CampaignPrior, Candidate, IterationRun, Measurement, ModelVersion, Prediction, PriorMaterial,
                       PriorSet, ProposalBatch, ProposalItem)
from e2t_al.acquisition import CHOSEN_BY

FORMAT = "e2t-al campaign export 1"
CANDIDATE_COLUMNS = ["identifier", "representation_kind", "element_domain", "source", "created_at", "retired_at", "retired_by",
                     "retirement_reason", "representation"]
MEASUREMENT_COLUMNS = ["number", "candidate", "value", "unit", "value_in_campaign_unit", "uncertainty", "method", "operator",
                       "measured_at", "recorded_at", "status", "corrects", "proposal", "notes", "retracted_by", "retracted_at",
                       "retraction_reason"]
PROPOSAL_COLUMNS = ["batch", "iteration", "acquisition", "batch_created_at", "model_version", "rank", "candidate", "predicted_mean",
                    "predicted_std", "acquisition_value", "novelty", "status", "decided_by", "decided_at", "comment", "chosen_by"]
PREDICTION_COLUMNS = ["candidate", "model_version", "mean", "std", "novelty"]
PRIOR_COLUMNS = ["identifier", "representation_kind", "element_domain", "value", "representation"]


# ---- export ------------------------------------------------------------------------------------------------
def export_campaign(session: Session, campaign: Campaign, folder: Path) -> dict:
    """Write the campaign to ``folder`` (created; must be empty); returns the manifest."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise StoreError(f"{folder} is not empty: export into a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    candidates = {c.id: c for c in service.list_candidates(session, campaign)}
    batches = service.proposal_batches(session, campaign)
    batch_number = {b.id: n for n, b in enumerate(batches, start=1)}
    runs = service.iteration_runs(session, campaign)
    iteration_of = {r.id: r.iteration for r in runs}
    versions = list(session.exec(select(ModelVersion).where(ModelVersion.campaign_id == campaign.id).order_by(ModelVersion.id)))
    version_number = {v.id: n for n, v in enumerate(versions, start=1)}
    items = {item.id: item for item, _ in service.proposal_items(session, campaign)}
    measurements = [m for m, _ in service.list_measurements(session, campaign, include_history=True)]
    measurement_number = {m.id: n for n, m in enumerate(measurements, start=1)}

    _write_csv(folder / "candidates.csv", CANDIDATE_COLUMNS, [
        [c.identifier, c.representation_kind, c.element_domain, c.source, _time(c.created_at), _time(c.retired_at), c.retired_by,
         c.retirement_reason, c.representation] for c in candidates.values()])
    _write_csv(folder / "measurements.csv", MEASUREMENT_COLUMNS, [
        [measurement_number[m.id], candidates[m.candidate_id].identifier, repr(m.value), m.unit, repr(m.value_in_campaign_unit),
         _number(m.uncertainty), m.method, m.operator, _time(m.measured_at), _time(m.recorded_at), m.status,
         measurement_number.get(m.corrects_id), _item_key(items.get(m.proposal_item_id), batch_number), m.notes, m.retracted_by,
         _time(m.retracted_at), m.retraction_reason] for m in measurements])
    _write_csv(folder / "proposals.csv", PROPOSAL_COLUMNS, [
        [batch_number[b.id], iteration_of.get(b.iteration_run_id), b.acquisition, _time(b.created_at),
         version_number.get(b.model_version_id), item.rank, candidate.identifier, repr(item.predicted_mean), repr(item.predicted_std),
         repr(item.acquisition_value), repr(item.novelty), item.status, item.decided_by, _time(item.decided_at), item.comment,
         item.chosen_by]
        for b in batches for item, candidate in service.proposal_items(session, campaign, batch_id=b.id)])
    latest = service.latest_predictions(session, campaign)
    _write_csv(folder / "predictions.csv", PREDICTION_COLUMNS, [
        [candidates[p.candidate_id].identifier, version_number[p.model_version_id], repr(p.mean), repr(p.std), repr(p.novelty)]
        for p in sorted(latest.values(), key=lambda p: p.candidate_id)])

    priors = []
    for n, link in enumerate(session.exec(select(CampaignPrior).where(CampaignPrior.campaign_id == campaign.id)
                                          .order_by(CampaignPrior.id)), start=1):
        entry = {"excluded_domains": link.excluded_domains, "excluded_identifiers": link.excluded_identifiers}
        if link.prior_set_id is not None:
            prior = session.get(PriorSet, link.prior_set_id)
            _write_csv(folder / "prior" / f"{n}.csv", PRIOR_COLUMNS, [
                [m.identifier, m.representation_kind, m.element_domain, repr(m.value), m.representation]
                for m in session.exec(select(PriorMaterial).where(PriorMaterial.prior_set_id == prior.id).order_by(PriorMaterial.id))])
            entry |= {"file": f"prior/{n}.csv", "name": prior.name, "dataset": prior.dataset, "target": prior.target_property,
                      "unit": prior.unit, "representation_kind": prior.representation_kind,
                      "content_sha256": prior.content_sha256, "provenance": prior.provenance}
        else:
            entry |= {"campaign": session.get(Campaign, link.source_campaign_id).name}
        priors.append(entry)

    model_entries = []
    for n, version in enumerate(versions, start=1):
        source = Path(version.checkpoint_path)
        copied = None
        if source.exists():
            copied = f"models/{n}"
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / copied)
        model_entries.append({"number": n, "kind": version.kind, "checkpoint": copied, "checkpoint_sha256": version.checkpoint_sha256,
                              "measurements": sorted(measurement_number[i] for i in version.measurement_ids if i in measurement_number),
                              "metrics": _renumber_metrics(version.metrics, measurement_number), "created_at": _time(version.created_at)})
    (folder / "campaign.json").write_text(json.dumps({
        "name": campaign.name, "target_property": campaign.target_property, "unit": campaign.unit, "objective": campaign.objective,
        "target_low": campaign.target_low, "target_high": campaign.target_high, "valid_min": campaign.valid_min,
        "valid_max": campaign.valid_max, "dataset": campaign.dataset, "created_at": _time(campaign.created_at),
        "config": campaign.config}, indent=2, sort_keys=True))
    manifest = {"format": FORMAT, "campaign": campaign.name, "model_versions": model_entries, "prior": priors,
                "iterations": [{"iteration": r.iteration, "status": r.status, "flow_run_id": r.flow_run_id,
                                "started_at": _time(r.started_at), "finished_at": _time(r.finished_at), "timings": r.timings,
                                "message": r.message} for r in runs],
                "files": {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
                          if p.is_file() and p.parts[len(folder.parts)] != "models"}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


# ---- import ------------------------------------------------------------------------------------------------
def import_campaign(session: Session, folder: Path, name: str | None = None, models_dir: Path | None = None) -> Campaign:
    """Rebuild an exported campaign in this store (as ``name`` if given), in the caller's transaction: all of it
    or nothing. Files are checked against the manifest's SHA-256 first; prior sets identical to stored ones are
    shared, not copied. Model checkpoints are copied to ``models_dir`` (default: the config's artifacts folder)."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    meta = json.loads((folder / "campaign.json").read_text())
    name = name or meta["name"]
    config = dict(meta["config"], name=name)
    campaign = service.create_campaign(session, CampaignIn(
        name=name, target_property=meta["target_property"], unit=meta["unit"], objective=meta["objective"],
        target_low=meta["target_low"], target_high=meta["target_high"], valid_min=meta["valid_min"], valid_max=meta["valid_max"],
        dataset=meta["dataset"], config=config), actor="import")
    campaign.created_at = _parse_time(meta["created_at"])

    candidates = {}
    for row in _read_csv(folder / "candidates.csv"):
        data = CandidateIn(identifier=row["identifier"], representation_kind=row["representation_kind"],
                           representation=row["representation"], source=row["source"] or None)
        candidate = Candidate(campaign_id=campaign.id, element_domain=row["element_domain"], created_at=_parse_time(row["created_at"]),
                              retired_at=_parse_time(row["retired_at"]), retired_by=row["retired_by"] or None,
                              retirement_reason=row["retirement_reason"] or None, **data.model_dump())
        session.add(candidate)
        candidates[candidate.identifier] = candidate
    session.flush()

    for entry in manifest["prior"]:
        if "campaign" in entry:
            service.link_prior(session, campaign, source_campaign=service.get_campaign(session, entry["campaign"]),
                               excluded_domains=entry["excluded_domains"], excluded_identifiers=entry["excluded_identifiers"],
                               actor="import")
            continue
        rows = _read_csv(folder / entry["file"])
        prior = service.store_prior_set(
            session, entry["dataset"], entry["target"], entry["unit"], entry["representation_kind"],
            [service.CandidateRow(f"{entry['file']} line {i}", CandidateIn(identifier=r["identifier"], representation_kind=r["representation_kind"],
                                                                            representation=r["representation"]), r["element_domain"])
             for i, r in enumerate(rows, start=2)], [float(r["value"]) for r in rows], entry["provenance"])
        if prior.content_sha256 != entry["content_sha256"]:
            raise StoreError(f"{entry['file']}: its content does not give the exported prior set's SHA-256")
        service.link_prior(session, campaign, prior_set=prior, excluded_domains=entry["excluded_domains"],
                           excluded_identifiers=entry["excluded_identifiers"], actor="import")

    runs = {}
    for entry in manifest["iterations"]:
        run = IterationRun(campaign_id=campaign.id, iteration=entry["iteration"], status=entry["status"], flow_run_id=entry["flow_run_id"],
                           started_at=_parse_time(entry["started_at"]), finished_at=_parse_time(entry["finished_at"]),
                           timings=entry["timings"], message=entry["message"])
        session.add(run)
        runs[entry["iteration"]] = run
    session.flush()

    measurements_csv = _read_csv(folder / "measurements.csv")
    versions = {}
    models_dir = Path(models_dir or Path(config.get("artifacts_dir", "runs")) / name / "models")
    for entry in manifest["model_versions"]:
        path = models_dir / f"imported_{entry['number']}"
        if entry["checkpoint"]:
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            source = folder / entry["checkpoint"]
            path.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, path)
            if service.checksum(path) != entry["checkpoint_sha256"]:
                raise StoreError(f"{entry['checkpoint']}: the checkpoint's SHA-256 differs from the manifest's")
        version = ModelVersion(campaign_id=campaign.id, kind=entry["kind"], checkpoint_path=str(path.resolve()),
                               checkpoint_sha256=entry["checkpoint_sha256"], measurement_ids=[], metrics={},
                               created_at=_parse_time(entry["created_at"]))
        session.add(version)
        versions[entry["number"]] = (version, entry)
    session.flush()

    batches, items = {}, {}
    for row in _read_csv(folder / "proposals.csv"):
        batch_key = int(row["batch"])
        if batch_key not in batches:
            iteration = int(row["iteration"]) if row["iteration"] else None
            batch = ProposalBatch(campaign_id=campaign.id, iteration_run_id=runs[iteration].id if iteration in runs else None,
                                  model_version_id=versions[int(row["model_version"])][0].id if row["model_version"] else None,
                                  acquisition=row["acquisition"], created_at=_parse_time(row["batch_created_at"]))
            session.add(batch)
            session.flush()
            batches[batch_key] = batch
        item = ProposalItem(batch_id=batches[batch_key].id, candidate_id=_candidate(candidates, row["candidate"]).id, rank=int(row["rank"]),
                            predicted_mean=float(row["predicted_mean"]), predicted_std=float(row["predicted_std"]),
                            acquisition_value=float(row["acquisition_value"]), novelty=float(row["novelty"]), status=row["status"],
                            decided_by=row["decided_by"] or None, decided_at=_parse_time(row["decided_at"]), comment=row["comment"] or None,
                            chosen_by=_chosen_by(row))
        session.add(item)
        items[f"{batch_key}:{row['rank']}"] = item
    session.flush()

    numbered = {}
    for row in measurements_csv:
        checked = MeasurementIn(candidate=row["candidate"], value=float(row["value"]), unit=row["unit"], operator=row["operator"],
                                uncertainty=float(row["uncertainty"]) if row["uncertainty"] else None, method=row["method"] or None,
                                notes=row["notes"] or None)
        measurement = Measurement(
            candidate_id=_candidate(candidates, checked.candidate).id, value=checked.value, unit=checked.unit,
            value_in_campaign_unit=float(row["value_in_campaign_unit"]), uncertainty=checked.uncertainty, method=checked.method,
            operator=checked.operator, measured_at=_parse_time(row["measured_at"]), recorded_at=_parse_time(row["recorded_at"]),
            status=row["status"], corrects_id=numbered[int(row["corrects"])].id if row["corrects"] else None,
            proposal_item_id=items[row["proposal"]].id if row["proposal"] else None, notes=checked.notes,
            retracted_by=row["retracted_by"] or None, retracted_at=_parse_time(row["retracted_at"]),
            retraction_reason=row["retraction_reason"] or None)
        session.add(measurement)
        session.flush()
        numbered[int(row["number"])] = measurement

    for version, entry in versions.values():
        version.measurement_ids = sorted(numbered[n].id for n in entry["measurements"])
        version.metrics = _renumber_metrics(entry["metrics"], {n: m.id for n, m in numbered.items()})
        session.add(version)
    session.add_all([Prediction(model_version_id=versions[int(r["model_version"])][0].id, candidate_id=_candidate(candidates, r["candidate"]).id,
                                mean=float(r["mean"]), std=float(r["std"]), novelty=float(r["novelty"]))
                     for r in _read_csv(folder / "predictions.csv")])
    session.flush()
    service.audit(session, "import", "campaign.import", campaign, folder=str(folder), exported_as=meta["name"])
    return campaign


# ---- helpers -----------------------------------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise StoreError(f"{folder} is not a campaign export: no manifest.json")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{path}: unknown format {manifest.get('format')!r} (expected {FORMAT!r})")
    for relative, digest in manifest["files"].items():
        file = folder / relative
        if not file.is_file():
            raise StoreError(f"{folder}: {relative} is missing")
        if _sha256(file) != digest:
            raise StoreError(f"{folder}: {relative} changed since the export (SHA-256 differs)")
    return manifest


def _renumber_metrics(metrics: dict, mapping: dict) -> dict:
    """``metrics['trained_on']`` lists measurement keys: ids → export numbers, or back."""
    if "trained_on" not in metrics:
        return dict(metrics)
    return dict(metrics, trained_on=sorted(mapping[i] for i in metrics["trained_on"] if i in mapping))


def _candidate(candidates: dict, identifier: str) -> Candidate:
    if identifier not in candidates:
        raise StoreError(f"the export names candidate {identifier!r}, which candidates.csv lacks")
    return candidates[identifier]


def _item_key(item: ProposalItem | None, batch_number: dict) -> str | None:
    return None if item is None else f"{batch_number[item.batch_id]}:{item.rank}"


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _number(value: float | None) -> str | None:
    return None if value is None else repr(value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_csv(path: Path, columns: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


def _chosen_by(row: dict) -> str:
    """A proposal row's ``chosen_by``; exports written before the column existed lack it (all "acquisition")."""
    chosen_by = row.get("chosen_by") or CHOSEN_BY[1]
    if chosen_by not in CHOSEN_BY:
        raise StoreError(f"proposals.csv: chosen_by must be one of {', '.join(map(repr, CHOSEN_BY))}, not {chosen_by!r}")
    return chosen_by


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise StoreError(f"{path} is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
