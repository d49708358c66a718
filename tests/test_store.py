"""The campaign store on SQLite and PostgreSQL: migrations, measurements, imports, proposals."""

from __future__ import annotations

import pytest
from alembic import command
from sqlmodel import select

from db import service
from db.engine import NotMigratedError, alembic_config, make_engine, require_migrated, session_scope, upgrade
from db.importers import candidate_row, candidates_from_cif_folder, candidates_from_csv, measurements_from_csv
from db.schemas import CampaignIn, DecisionIn, MeasurementIn
from db.tables import AuditEvent, Measurement


def m(candidate="c0", value=1.5, unit="eV", operator="alice", **extra) -> MeasurementIn:
    return MeasurementIn(candidate=candidate, value=value, unit=unit, operator=operator, **extra)


# ---- migrations --------------------------------------------------------------------------------------------
def test_unmigrated_database_is_refused_with_the_command_to_run(store_url):
    engine = make_engine(store_url)
    with pytest.raises(NotMigratedError, match="e2t-al db upgrade"):
        require_migrated(engine)
    engine.dispose()


def test_upgrade_from_empty_to_head_and_models_match_migrations(store_url):
    upgrade(store_url)
    engine = make_engine(store_url)
    require_migrated(engine)
    engine.dispose()
    command.check(alembic_config(store_url))  # raises when the models and the migrations differ
    upgrade(store_url)  # a second upgrade is a no-op


# ---- measurements ------------------------------------------------------------------------------------------
def test_units_are_converted_and_other_dimensions_refused(store, campaign):
    with session_scope(store) as session:
        stored = service.add_measurement(session, campaign, m(value=1530, unit="meV"))
        assert stored.value == 1530 and stored.unit == "meV" and stored.value_in_campaign_unit == pytest.approx(1.53)
    with pytest.raises(service.StoreError, match="cannot convert 'GPa'"), session_scope(store) as session:
        service.add_measurement(session, campaign, m(value=2, unit="GPa"))


@pytest.mark.parametrize("value, unit", [(-0.1, "eV"), (15.01, "eV"), (16000, "meV")])
def test_values_outside_the_valid_range_are_refused(store, campaign, value, unit):
    with pytest.raises(service.StoreError, match="outside the valid range"), session_scope(store) as session:
        service.add_measurement(session, campaign, m(value=value, unit=unit))
    with session_scope(store) as session:
        assert service.list_measurements(session, campaign) == []


def test_unknown_candidate_is_refused(store, campaign):
    with pytest.raises(service.StoreError, match="no candidate 'c9'"), session_scope(store) as session:
        service.add_measurement(session, campaign, m(candidate="c9"))


def test_the_same_measurement_twice_within_a_minute_is_flagged(store, campaign):
    with session_scope(store) as session:
        service.add_measurement(session, campaign, m())
    with pytest.raises(service.DuplicateMeasurementError), session_scope(store) as session:
        service.add_measurement(session, campaign, m())
    with session_scope(store) as session:  # another operator, another value, or an explicit yes are all kept
        service.add_measurement(session, campaign, m(operator="bob"))
        service.add_measurement(session, campaign, m(value=1.6))
        service.add_measurement(session, campaign, m(), allow_duplicate=True)
        assert len(service.list_measurements(session, campaign)) == 4


def test_correction_supersedes_and_retraction_keeps_history(store, campaign):
    with session_scope(store) as session:
        first = service.add_measurement(session, campaign, m(value=2.0))
        other = service.add_measurement(session, campaign, m(candidate="c1", value=3.0))
    with session_scope(store) as session:
        fixed = service.correct_measurement(session, campaign, first.id, m(value=2.2, operator="bob"))
        service.retract_measurement(session, campaign, other.id, "carol", "contaminated sample")
    with session_scope(store) as session:
        assert fixed.corrects_id == first.id
        assert service.measured_values(session, campaign) == {"c0": pytest.approx(2.2)}
        history = {row.id: row for row, _ in service.list_measurements(session, campaign, include_history=True)}
        assert history[first.id].status == "superseded" and history[first.id].value == 2.0
        assert history[other.id].status == "retracted" and history[other.id].retraction_reason == "contaminated sample"
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
        assert "measurement.correct" in actions and "measurement.retract" in actions
    with pytest.raises(service.StoreError, match="already retracted"), session_scope(store) as session:
        service.retract_measurement(session, campaign, other.id, "carol", "again")


# ---- imports -----------------------------------------------------------------------------------------------
def test_csv_import_reports_every_bad_row_and_writes_nothing(store, campaign, tmp_path):
    path = tmp_path / "candidates.csv"
    path.write_text("identifier,formula\nn1,NaCl\nn2,Xx2O\nn3,\nc0,KBr\nn1,LiF\nn6,Fe2O3\n")
    rows, problems = candidates_from_csv(path)
    with pytest.raises(service.ImportRefused) as refused, session_scope(store) as session:
        service.import_candidates(session, campaign, rows, problems)
    lines = {p.line: p.reason for p in refused.value.problems}
    assert set(lines) == {"line 3", "line 4", "line 5", "line 6"}
    assert "Xx2O" in lines["line 3"] and "already a candidate" in lines["line 5"] and "duplicate" in lines["line 6"]
    with session_scope(store) as session:
        assert [c.identifier for c in service.list_candidates(session, campaign)] == ["c0", "c1", "c2"]


def test_cif_folder_import_reports_malformed_cifs(store, campaign, tmp_path, hoip):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for identifier in hoip.ids[:3]:
        (folder / f"{identifier}.cif").write_text(hoip.representations[list(hoip.ids).index(identifier)])
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 5\nloop_\n_atom_site_label\n")
    rows, problems = candidates_from_cif_folder(folder)
    assert len(rows) == 3 and [p.line for p in problems] == ["broken.cif"]
    assert {r.element_domain for r in rows} <= set(hoip.domains)
    with pytest.raises(service.ImportRefused) as refused, session_scope(store) as session:
        service.import_candidates(session, campaign, rows)  # a formula campaign: CIFs do not fit, each line named
    assert [p.line for p in refused.value.problems] == [f"{i}.cif" for i in hoip.ids[:3]]
    assert "one representation per campaign" in str(refused.value)
    with session_scope(store) as session:
        assert service.count_candidates(session, campaign) == 3
        cif_campaign = service.create_campaign(session, CampaignIn(name="cifs", target_property="band_gap", unit="eV"))
        service.import_candidates(session, cif_campaign, rows)
        assert service.count_candidates(session, cif_campaign) == 3


def test_measurement_csv_import_is_all_or_nothing(store, campaign, tmp_path):
    path = tmp_path / "measured.csv"
    path.write_text("candidate,value,unit,operator\nc0,1.2,eV,alice\nc1,abc,eV,alice\nc2,900,meV,alice\nc9,1,eV,alice\n")
    rows, problems = measurements_from_csv(path)
    with pytest.raises(service.ImportRefused) as refused, session_scope(store) as session:
        service.import_measurements(session, campaign, rows, problems)
    assert [p.line for p in refused.value.problems] == ["line 3", "line 5"]
    with session_scope(store) as session:
        assert service.list_measurements(session, campaign) == []
    path.write_text("candidate,value,unit,operator\nc0,1.2,eV,alice\nc2,900,meV,alice\n")
    with session_scope(store) as session:
        service.import_measurements(session, campaign, *measurements_from_csv(path))
        assert service.measured_values(session, campaign) == {"c0": pytest.approx(1.2), "c2": pytest.approx(0.9)}


# ---- proposals ---------------------------------------------------------------------------------------------
def _propose(session, campaign, run=None):
    ids = [c.id for c in service.list_candidates(session, campaign)]
    items = [service.ProposedCandidate(i, 1.0, 0.5, 0.1 * k, 0.0) for k, i in enumerate(ids)]
    return service.record_proposal(session, campaign, items, "qlogei", iteration_run=run)


def test_a_repeated_iteration_returns_its_batch_instead_of_a_second_one(store, campaign):
    with session_scope(store) as session:
        run = service.start_iteration(session, campaign, 1)
        first = _propose(session, campaign, run)
    with session_scope(store) as session:
        run = service.start_iteration(session, campaign, 1)
        again = _propose(session, campaign, run)
        assert again.id == first.id and len(service.proposal_items(session, campaign)) == 3


def test_decisions_and_measurement_close_a_proposal(store, campaign):
    with session_scope(store) as session:
        _propose(session, campaign)
        (a, _), (b, _), (c, _) = service.proposal_items(session, campaign)
        service.decide(session, campaign, a.id, DecisionIn(decision="approved", user="rita", comment="go"))
        service.decide(session, campaign, b.id, DecisionIn(decision="rejected", user="rita"))
        with pytest.raises(service.IllegalTransition, match="is approved: it cannot become rejected"):
            service.decide(session, campaign, a.id, DecisionIn(decision="rejected", user="rita"))
    with session_scope(store) as session:
        service.add_measurement(session, campaign, m(candidate="c0"))
        statuses = {item.id: item.status for item, _ in service.proposal_items(session, campaign)}
        assert statuses == {a.id: "measured", b.id: "rejected", c.id: "proposed"}
        assert [item.id for item, _ in service.open_proposals(session, campaign)] == [c.id]
        assert session.exec(select(Measurement)).one().proposal_item_id == a.id


def test_a_proposal_keeps_what_chose_each_place(store, campaign):
    from db.transfer import _chosen_by

    with session_scope(store) as session:
        first, second = [c.id for c in service.list_candidates(session, campaign)][:2]
        items = [service.ProposedCandidate(first, 2.0, 0.1, -3.0, 0.0, "highest mean"), service.ProposedCandidate(second, 1.0, 0.5, -1.0, 0.0)]
        service.record_proposal(session, campaign, items, "qlogei")
        assert [item.chosen_by for item, _ in service.proposal_items(session, campaign)] == ["highest mean", "acquisition"]
    with pytest.raises(service.StoreError, match="chosen_by must be one of 'highest mean', 'acquisition', not 'luck'"), \
            session_scope(store) as session:
        service.record_proposal(session, campaign, [service.ProposedCandidate(first, 1.0, 0.5, 0.0, 0.0, "luck")], "qlogei")
    with session_scope(store) as session:
        assert len(service.proposal_items(session, campaign)) == 2  # the refused batch wrote nothing
    assert _chosen_by({"rank": "1"}) == "acquisition"  # an export written before the column existed
    with pytest.raises(service.StoreError, match="proposals.csv: chosen_by must be one of"):
        _chosen_by({"chosen_by": "luck"})


@pytest.mark.parametrize("field, value, reason", [
    ("value", True, "must be a number, not true"), ("value", "1_000", "without underscores"),
    ("uncertainty", False, "must be a number"), ("measured_at", "0001-01-01T00:00:00Z", "before 1900"),
    ("notes", "ok\x00hidden", "control characters"), ("method", "UV\x1bvis", "control characters")])
def test_loose_values_are_refused(field, value, reason):
    from pydantic import ValidationError

    fields = {"candidate": "c0", "value": 1.5, "unit": "eV", "operator": "alice", field: value}
    with pytest.raises(ValidationError, match=reason):
        MeasurementIn.model_validate(fields)
    assert MeasurementIn.model_validate({**fields, field: {"value": 1.5, "uncertainty": 0.1, "measured_at": None,
                                                         "notes": "line one\nline two", "method": "UV-vis"}[field]})


def test_the_prior_count_is_what_the_model_learns_from(store, campaign):
    """``campaign_priors`` (dashboards: counted per domain in SQL) gives the same number of materials as
    ``prior_entries`` (the model's background support set): excluded domains, excluded identifiers and the
    campaign's own candidates left out, from a prior set and from an earlier campaign."""
    from db.schemas import CandidateIn

    rows = [service.CandidateRow(f"line {i}", CandidateIn(identifier=ident, representation_kind="formula",
                                                          representation="CsPbI3"), domain)
            for i, (ident, domain) in enumerate([("q1", "Pb-I"), ("q2", "Pb-I"), ("q3", "I-Sn"), ("q4", "Ge-F"),
                                                 ("q5", "Ge-F"), ("q6", "Cs-Ge-F")])]
    with session_scope(store) as session:
        target = service.get_campaign(session, campaign.name)
        own = service.list_candidates(session, target)[0].identifier
        rows.append(service.CandidateRow("line 9", CandidateIn(identifier=own, representation_kind="formula",
                                                               representation="CsPbI3"), "Pb-I"))
        prior = service.store_prior_set(session, "hoip", "band_gap", "eV", "formula", rows, [1.0] * len(rows), {})
        service.link_prior(session, target, prior, excluded_domains=["F-Ge"], excluded_identifiers=["q2", "q4"])
        (_, name, count), = service.campaign_priors(session, target)
        entries = service.prior_entries(session, target)
        assert count == len(entries) == 2 and sorted(e.identifier for e in entries) == ["q1", "q3"]
        assert name == prior.name
        earlier = service.create_campaign(session, CampaignIn(name="earlier", target_property="band_gap", unit="eV",
                                                              objective="maximise", valid_min=0, valid_max=15))
        service.import_candidates(session, earlier, [candidate_row(f"line {i}", {"identifier": ident, "representation_kind": "formula",
                                                                             "representation": "CsPbI3"})
                                                     for i, ident in enumerate([own, "e1", "e2", "e3"])])
        for ident in (own, "e1", "e3"):  # e2 never measured; ``own`` is also a candidate of the target
            service.add_measurement(session, earlier, MeasurementIn(candidate=ident, value=2.0, unit="eV", operator="lab"))
        service.link_prior(session, target, source_campaign=earlier, excluded_identifiers=["e3"])
        counts = [count for _, _, count in service.campaign_priors(session, target)]
        entries = service.prior_entries(session, target)
        assert counts == [2, 1] and sorted(e.identifier for e in entries) == ["e1", "q1", "q3"]
