"""Benchmarks: commands that print figures and write a JSON report (``e2t-al bench …``)."""

from __future__ import annotations

import platform
from importlib import metadata

from e2t_al.data import DataError


def seed_range(seeds: int, first_seed: int) -> list[int]:
    """Seeds ``first_seed`` … ``first_seed + seeds − 1`` of a benchmark, checked as the command's options."""
    if seeds < 1:
        raise DataError("--seeds must be at least 1")
    if first_seed < 0:
        raise DataError("--first-seed must be 0 or more")
    return list(range(first_seed, first_seed + seeds))


NUMERIC_PACKAGES = ("torch", "botorch", "gpytorch", "linear_operator", "numpy", "scipy", "pymatgen", "rdkit")


def environment() -> dict:
    """What a benchmark's figures depend on besides the code and the data: the Python and numeric packages' versions
    (``None`` for one not installed). A discovery campaign repeated in one environment gave the same result, but small
    numerical differences between package versions moved single seeds by whole batches, so reports record it."""
    versions = {}
    for package in NUMERIC_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), **versions}


def joined_environments(*reports: dict) -> list[dict]:
    """The distinct ``environments`` of reports whose seeds or domains are joined into one, in first-seen order."""
    seen = [env for report in reports for env in report.get("environments", [])]
    return [env for i, env in enumerate(seen) if env not in seen[:i]]
