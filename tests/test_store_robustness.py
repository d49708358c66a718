"""The store under load, killed half-way, and fed hostile input (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlmodel import select

from db import service
from db.engine import StoreError, read_only, session_scope
from db.importers import candidates_from_csv, measurements_from_csv
from db.schemas import MeasurementIn
from db.tables import AuditEvent, ProposalBatch, ProposalItem
from e2t_al.data import DataError
from e2t_al.units import UNITS

WRITERS, PER_WRITER = 8, 200


def _in_thread(work, seconds: float = 5.0):
    """Run ``work`` in a thread; (finished within ``seconds``, its result or exception)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = work()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            outcome["result"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    return not thread.is_alive(), outcome.get("result")


def test_a_read_only_session_neither_waits_for_a_writer_nor_holds_one_up(store, campaign):
    """Upload and import previews run in ``read_only``: on SQLite a deferred BEGIN on a WAL snapshot, not the writers'
    BEGIN IMMEDIATE, and not the process's turn (pages and API reads do take the turn: ``db.engine``)."""
    def count() -> int:
        with read_only(store) as session:
            return len(service.list_measurements(session, campaign))

    def write(value: float) -> None:
        with session_scope(store) as session:
            service.add_measurement(session, campaign, MeasurementIn(candidate="c0", value=value, unit="eV", operator="w"))

    before = count()
    with session_scope(store) as session:  # a writer half-way: its row written, not committed
        service.add_measurement(session, campaign, MeasurementIn(candidate="c1", value=1.5, unit="eV", operator="w"))
        session.flush()
        finished, seen = _in_thread(count)
        assert finished, "a read-only session waited for the writer"
        assert seen == before  # the committed snapshot, not the writer's uncommitted row
    assert count() == before + 1
    with read_only(store) as session:  # a long read half-way
        service.list_measurements(session, campaign)
        finished, error = _in_thread(lambda: write(2.5))
        assert finished and error is None, f"a writer waited for a read-only session: {error}"
    assert count() == before + 2


def test_transactions_of_one_process_take_turns_on_either_backend(store, campaign):
    """One transaction at a time per process (``db.engine._transaction_turn``), PostgreSQL included: a web server's
    threads that all ran transactions at once fought over the GIL (``bench web-load``: p95 930 ms without turns)."""
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with session_scope(store) as session:
            service.list_measurements(session, campaign)
            events.append("first in")
            inside.set()
            time.sleep(0.5)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(timeout=10)
    with session_scope(store) as session:
        events.append("second in")
        service.list_measurements(session, campaign)
    thread.join()
    assert events == ["first in", "first out", "second in"]


def test_eight_writers_and_a_reader_lose_nothing_and_duplicate_nothing(store, campaign):
    errors, reader_counts, done = [], [], threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(PER_WRITER):
                with session_scope(store) as session:
                    service.add_measurement(session, campaign, MeasurementIn(
                        candidate=f"c{i % 3}", value=(w * PER_WRITER + i) / 200, unit="eV", operator=f"writer{w}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                with session_scope(store) as session:
                    reader_counts.append(len(service.list_measurements(session, campaign)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()

    assert errors == []
    with session_scope(store) as session:
        rows = service.list_measurements(session, campaign)
    entered = sorted((m.operator, round(m.value * 200)) for m, _ in rows)
    assert entered == sorted((f"writer{w}", w * PER_WRITER + i) for w in range(WRITERS) for i in range(PER_WRITER))
    assert len(reader_counts) > 1 and reader_counts == sorted(reader_counts)  # the reader only ever saw whole commits


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from sqlalchemy import event
    from db import service
    from db.engine import make_engine, session_scope
    from db.importers import candidate_row
    from db.tables import Candidate, ProposalItem

    url, what = sys.argv[1], sys.argv[2]
    inserted = []

    def die_half_way(mapper, connection, target):
        inserted.append(target)
        if len(inserted) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no rollback, no cleanup: as a power cut would

    engine = make_engine(url)
    with session_scope(engine) as session:
        campaign = service.get_campaign(session, "test")
        if what == "import":
            event.listen(Candidate, "after_insert", die_half_way)
            rows = [candidate_row(f"line {i}", {"identifier": f"new{i}", "representation_kind": "formula",
                                                "representation": "NaCl"}) for i in range(4)]
            service.import_candidates(session, campaign, rows)
        else:
            event.listen(ProposalItem, "after_insert", die_half_way)
            ids = [c.id for c in service.list_candidates(session, campaign)]
            service.record_proposal(session, campaign, [service.ProposedCandidate(i, 1.0, 0.1, 0.5, 0.0) for i in ids], "qucb")
    print("not killed")
""")


@pytest.mark.parametrize("what", ["import", "proposal"])
def test_a_write_killed_half_way_leaves_the_database_as_it_was(store, store_url, campaign, what):
    def snapshot():
        with session_scope(store) as session:
            return ([c.identifier for c in service.list_candidates(session, campaign)],
                    len(session.exec(select(ProposalBatch)).all()), len(session.exec(select(ProposalItem)).all()),
                    len(session.exec(select(AuditEvent)).all()))

    before = snapshot()
    result = subprocess.run([sys.executable, "-c", KILL_SCRIPT, store_url, what], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stdout + result.stderr  # it really died inside the write
    assert snapshot() == before
    with session_scope(store) as session:  # and the database still takes writes
        service.add_measurement(session, campaign, MeasurementIn(candidate="c0", value=1.0, unit="eV", operator="alice"))


# ---- hostile input -----------------------------------------------------------------------------------------
anything = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=30))
units = st.one_of(st.sampled_from(sorted(UNITS)), st.text(max_size=10))


@given(value=anything, unit=units, candidate=st.text(max_size=40), operator=st.text(max_size=40), uncertainty=anything)
def test_measurement_validator_accepts_only_finite_known_input(value, unit, candidate, operator, uncertainty):
    try:
        data = MeasurementIn(candidate=candidate, value=value, unit=unit, operator=operator, uncertainty=uncertainty)
    except ValidationError:
        return
    assert math.isfinite(data.value) and data.unit in UNITS and data.candidate and data.operator
    assert data.uncertainty is None or (math.isfinite(data.uncertainty) and data.uncertainty >= 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.floats(allow_nan=False, allow_infinity=False, width=32), unit=st.sampled_from(["eV", "meV", "GPa", ""]))
def test_the_store_keeps_only_values_in_range_and_unit(store, campaign, value, unit):
    data = MeasurementIn(candidate="c1", value=value, unit=unit, operator="fuzz")
    try:
        with session_scope(store) as session:
            stored = service.add_measurement(session, campaign, data, allow_duplicate=True)
    except StoreError:
        return
    assert unit in ("eV", "meV") and 0 <= stored.value_in_campaign_unit <= 15


csv_cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(header=st.lists(st.sampled_from(["identifier", "formula", "smiles", "domain", "x", ""]), min_size=1, max_size=4),
       body=st.lists(st.lists(csv_cells, max_size=5), max_size=6))
def test_candidate_csv_reader_reports_or_reads_every_row(tmp_path_factory, header, body):
    path = tmp_path_factory.mktemp("csv") / "candidates.csv"
    import csv
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    try:
        rows, problems = candidates_from_csv(path)
    except DataError:
        return
    assert len(rows) + len(problems) == len(list(csv.DictReader(path.open(newline=""))))
    assert all(p.line.startswith("line ") and p.reason for p in problems)


@settings(max_examples=60, deadline=None)
@given(body=st.lists(st.lists(csv_cells, min_size=3, max_size=4), max_size=6))
def test_measurement_csv_reader_reports_or_reads_every_row(tmp_path_factory, body):
    path = tmp_path_factory.mktemp("csv") / "measured.csv"
    import csv
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["candidate", "value", "unit", "operator"], *body])
    rows, problems = measurements_from_csv(path)
    assert len(rows) + len(problems) == len(list(csv.DictReader(path.open(newline=""))))
    assert all(math.isfinite(data.value) for _, data in rows)
