"""Benchmarks: commands that print figures and write a JSON report (``e2t-al bench …``)."""

from __future__ import annotations

from e2t_al.data import DataError


def seed_range(seeds: int, first_seed: int) -> list[int]:
    """Seeds ``first_seed`` … ``first_seed + seeds − 1`` of a benchmark, checked as the command's options."""
    if seeds < 1:
        raise DataError("--seeds must be at least 1")
    if first_seed < 0:
        raise DataError("--first-seed must be 0 or more")
    return list(range(first_seed, first_seed + seeds))
