"""The Prefect flows end to end on a small pool: one iteration, waiting on an open batch, a failure half-way
and its re-run, PostgreSQL stopped during an iteration, the simulated loop, and the Dask task runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from sqlmodel import select  # noqa: E402

from db import service  # noqa: E402
from db.engine import session_scope, store_engine, upgrade  # noqa: E402
from db.tables import IterationRun, ModelVersion, Prediction, ProposalBatch, ProposalItem  # noqa: E402
from e2t_al.campaign.setup import create_campaign_from_config  # noqa: E402
from e2t_al.config import CampaignConfig  # noqa: E402
from e2t_al.campaign.simulated_lab import SimulatedLab  # noqa: E402


pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def small_pool(mp):
    """150 inorganic compounds; the element seen in 15-40 of them is the unexplored domain."""
    data = mp.subset(np.arange(150))
    counts = Counter(e for keys in data.domain_keys for e in keys)
    unexplored = next(e for e, c in counts.most_common() if 15 <= c <= 40)
    return data, unexplored


def small_config(unexplored: str, tmp_path, **updates) -> CampaignConfig:
    config = CampaignConfig.model_validate({
        "name": "small", "dataset": "mp", "target": "band_gap", "unit": "eV", "valid_min": 0, "valid_max": 20,
        "unexplored_domains": [unexplored], "artifacts_dir": str(tmp_path / "runs"),
        "ensemble": {"members": 2, "model": {"encoder": {"descriptors": ["composition"], "hidden": [32], "embedding_dim": 8},
                                             "training": {"max_steps": 20, "validation_domains": 1, "validate_every": 10, "patience": 1}}},
        "acquisition": {"function": "qlogei", "batch_size": 3},
        "adaptation": {"finetune_after": 4, "finetune_steps": 5},
    })
    return config.model_copy(update=updates)


@pytest.fixture
def campaign_db(small_pool, tmp_path):
    data, unexplored = small_pool
    url = f"sqlite:///{tmp_path / 'flows.sqlite'}"
    upgrade(url)
    config = small_config(unexplored, tmp_path)
    with session_scope(store_engine(url)) as session:
        create_campaign_from_config(session, config, data)
    return url, config, data


def counts(url):
    with session_scope(store_engine(url)) as session:
        return (len(session.exec(select(ProposalBatch)).all()), len(session.exec(select(ProposalItem)).all()),
                len(session.exec(select(ModelVersion)).all()))


def test_one_iteration_end_to_end_then_waits_while_the_batch_is_open(campaign_db):
    from flows.campaign import campaign_iteration

    url, config, data = campaign_db
    result = campaign_iteration("small", url)
    assert result["status"] == "completed" and result["model"] == "pretrained" and len(result["batch"]) == 3
    assert all(os.path.exists(p) for p in result["plots"])
    with session_scope(store_engine(url)) as session:
        campaign = service.get_campaign(session, "small")
        measured = set(service.measured_values(session, campaign))
        proposed = [c.identifier for _, c in service.proposal_items(session, campaign)]
        assert len(set(proposed)) == 3 and not measured & set(proposed)
        assert service.latest_model_version(session, campaign).kind == "pretrained"
        predictions = service.latest_predictions(session, campaign)  # the whole pool, for the web app's views
        assert len(predictions) == len(service.list_candidates(session, campaign))
        items = service.proposal_items(session, campaign)
        assert all(abs(predictions[c.id].mean - item.predicted_mean) < 1e-9 for item, c in items)
    assert campaign_iteration("small", url)["status"] == "waiting"
    assert counts(url) == (1, 3, 1)


def test_a_failure_half_way_leaves_no_half_batch_and_the_rerun_succeeds(campaign_db, monkeypatch):
    from flows import campaign as flows_campaign

    url, _, _ = campaign_db

    record_proposal = flows_campaign.service.record_proposal

    def broken(*args, **kwargs):
        record_proposal(*args, **kwargs)  # the model version, the batch and its items are written (not committed) ...
        raise RuntimeError("disk full")  # ... and then the task dies

    monkeypatch.setattr(flows_campaign.service, "record_proposal", broken)
    with pytest.raises(RuntimeError):
        flows_campaign.campaign_iteration.with_options(retries=0)("small", url)
    assert counts(url) == (0, 0, 0)
    with session_scope(store_engine(url)) as session:
        assert not session.exec(select(Prediction)).all()  # the pool's predictions went with the model version
    monkeypatch.undo()
    with session_scope(store_engine(url)) as session:
        runs = session.exec(select(IterationRun)).all()
        assert [(r.iteration, r.status) for r in runs] == [(1, "failed")]
    assert flows_campaign.campaign_iteration("small", url)["status"] == "completed"
    assert counts(url) == (1, 3, 1)
    with session_scope(store_engine(url)) as session:
        assert [(r.iteration, r.status) for r in session.exec(select(IterationRun))] == [(1, "completed")]


POSTGRES_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own (``.ci/postgres.sh`` on a free port), which it may stop and start:
    (database URL, control(action) running ``postgres.sh stop|start``)."""
    from web_lab import free_port

    port = free_port()
    data = f"/tmp/e2t-al-pg-fault-{os.getpid()}-{port}"  # outside pytest's 0700 folders: the postgres user reads it
    env = {**os.environ, "E2T_AL_PG_PORT": str(port), "E2T_AL_PG_DATA": data}
    started = subprocess.run(["bash", str(POSTGRES_SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    if "E2T_AL_TEST_POSTGRES_URL=" not in started.stdout:
        pytest.skip(f"no PostgreSQL server could be started here: {started.stderr.strip()[-300:]}")
    admin_url = started.stdout.strip().split("E2T_AL_TEST_POSTGRES_URL=")[1]

    def control(action: str) -> None:
        subprocess.run(["bash", str(POSTGRES_SCRIPT), action], env=env, check=True, timeout=120)

    from conftest import _fresh_postgres_database

    yield _fresh_postgres_database(admin_url, "faults"), control
    subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop"], env=env, timeout=120)
    shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("outage", ["brief", "longer than the retries"])
def test_postgres_stopped_during_an_iteration_leaves_no_half_batch_and_the_next_run_succeeds(
        small_pool, own_postgres, tmp_path, monkeypatch, outage):
    """The server is stopped (immediate mode, as a crash) once the batch is chosen, before anything is written.
    Brief (back after about a second): the write's retries carry the iteration through. Longer: the iteration fails
    cleanly, nothing of it is stored, and once the server is back the next run completes the iteration."""
    from flows import campaign as flows_campaign

    url, control = own_postgres
    data, unexplored = small_pool
    upgrade(url)
    with session_scope(store_engine(url)) as session:
        create_campaign_from_config(session, small_config(unexplored, tmp_path), data)
    choose = flows_campaign.loop.score_and_choose

    def choose_then_stop_the_server(*args, **kwargs):
        chosen = choose(*args, **kwargs)
        control("stop")
        if outage == "brief":
            threading.Timer(1.0, control, ["start"]).start()
        return chosen

    monkeypatch.setattr(flows_campaign.loop, "score_and_choose", choose_then_stop_the_server)
    if outage == "brief":
        assert flows_campaign.campaign_iteration("small", url)["status"] == "completed"
    else:
        with pytest.raises(Exception, match="(?i)connect|server|closed|terminat"):
            flows_campaign.campaign_iteration("small", url)
        control("start")
        assert counts(url) == (0, 0, 0)  # no model version, no batch, no items: nothing half-written
        monkeypatch.undo()
        assert flows_campaign.campaign_iteration("small", url)["status"] == "completed"
    assert counts(url) == (1, 3, 1)
    with session_scope(store_engine(url)) as session:
        assert [(r.iteration, r.status) for r in session.exec(select(IterationRun))] == [(1, "completed")]
        items = session.exec(select(ProposalItem)).all()
        assert len({item.candidate_id for item in items}) == 3


def test_simulated_campaign_measures_adapts_and_never_proposes_twice(campaign_db):
    from flows.campaign import run_campaign

    url, config, data = campaign_db
    results = run_campaign("small", SimulatedLab(data, "band_gap"), iterations=3, database_url=url)
    assert [r["model"] for r in results] == ["pretrained", "instant", "finetune"]
    with session_scope(store_engine(url)) as session:
        campaign = service.get_campaign(session, "small")
        items = service.proposal_items(session, campaign)
        assert len(items) == 9 and len({c.identifier for _, c in items}) == 9
        assert {item.status for item, _ in items} <= {"measured", "failed"}
        lab = [m for m, _ in service.list_measurements(session, campaign) if m.operator == "simulated-lab"]
        assert len(lab) == sum(item.status == "measured" for item, _ in items)


def test_dask_task_runner_runs_an_iteration(campaign_db):
    from distributed import LocalCluster

    from flows.campaign import campaign_iteration
    from flows.deployments import task_runner_for

    url, config, _ = campaign_db
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        runner = task_runner_for(config.model_copy(update={"task_runner": "dask", "dask_address": cluster.scheduler_address}))
        result = campaign_iteration.with_options(task_runner=runner)("small", url)
    assert result["status"] == "completed" and len(result["batch"]) == 3


def test_serving_needs_a_schedule_and_builds_a_cron_deployment(campaign_db, monkeypatch):
    from flows.deployments import iteration_deployment

    url, _, _ = campaign_db
    with pytest.raises(ValueError, match="schedule_cron"):
        iteration_deployment("small", url)
    with session_scope(store_engine(url)) as session:
        campaign = service.get_campaign(session, "small")
        campaign.config = {**campaign.config, "schedule_cron": "0 6 * * 1"}
        session.add(campaign)
    deployment = iteration_deployment("small", url)
    assert deployment.schedules[0].schedule.cron == "0 6 * * 1"
    assert deployment.parameters == {"campaign": "small", "database_url": url}
