"""Shared fixtures. Tests that read the real data sets skip, saying why, when ../shared/data is absent."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")

from e2t_al.data import DataError, load_dataset  # noqa: E402
from e2t_al.data.paths import resolve_data_dir  # noqa: E402


def _data_dir():
    try:
        return resolve_data_dir()
    except DataError:
        return None


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect server for the whole session, for the modules that run flows (``usefixtures``)."""
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect_home")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def lab_template(tmp_path_factory):
    """The web tests' small lab (``web_lab.seed_lab``), seeded once; tests copy it (``web_lab.copied_lab``)."""
    from web_lab import seed_lab

    folder = tmp_path_factory.mktemp("lab")
    return folder / "lab.sqlite", seed_lab(f"sqlite:///{folder / 'lab.sqlite'}", folder)


@pytest.fixture(scope="session")
def data_dir():
    path = _data_dir()
    if path is None:
        pytest.skip("the shared data folder (../shared/data or $E2T_AL_DATA_DIR) is not present")
    return path


@pytest.fixture(scope="session")
def hoip(data_dir):
    return load_dataset("hoip", data_dir)


@pytest.fixture(scope="session")
def polymers(data_dir):
    return load_dataset("polymers", data_dir)


@pytest.fixture(scope="session")
def mp(data_dir):
    return load_dataset("mp", data_dir)


# ---- the store: every store test runs on SQLite and on PostgreSQL ------------------------------------------
POSTGRES_URL_VARIABLE = "E2T_AL_TEST_POSTGRES_URL"  # set by .ci/postgres.sh: a server where we may create databases


def _fresh_postgres_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty database URL (not yet migrated) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    admin_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not admin_url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE} (.ci/run starts one with .ci/postgres.sh)")
    return _fresh_postgres_database(admin_url, f"e2t_test_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def store(store_url):
    """A migrated store's engine."""
    from db.engine import make_engine, require_migrated, upgrade

    upgrade(store_url)
    engine = make_engine(store_url)
    require_migrated(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def campaign(store):
    """A small band-gap campaign with three formula candidates (no data files needed)."""
    from db import service
    from db.engine import session_scope
    from db.importers import candidate_row
    from db.schemas import CampaignIn

    with session_scope(store) as session:
        campaign = service.create_campaign(session, CampaignIn(name="test", target_property="band_gap", unit="eV",
                                                               objective="maximise", valid_min=0, valid_max=15))
        rows = [candidate_row(f"line {i}", {"identifier": f"c{i}", "representation_kind": "formula", "representation": f})
                for i, f in enumerate(["CsPbI3", "CsGeF3", "CH6NPbBr3"])]
        service.import_candidates(session, campaign, rows)
    return campaign
