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
