"""Loaders for the public materials data sets; each returns a ``MaterialsDataset``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from e2t_al.data.dataset import DataError, LoadProblem, MaterialsDataset
from e2t_al.data.hoip import load_hoip
from e2t_al.data.mp import load_mp
from e2t_al.data.paths import resolve_data_dir
from e2t_al.data.polymers import load_polymers

LOADERS: dict[str, Callable[[Path], MaterialsDataset]] = {"hoip": load_hoip, "polymers": load_polymers, "mp": load_mp}


def load_dataset(name: str, data_dir: str | Path | None = None) -> MaterialsDataset:
    """Load data set ``name`` (``hoip``, ``polymers`` or ``mp``) from the resolved data folder."""
    if name not in LOADERS:
        raise DataError(f"unknown data set {name!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[name](resolve_data_dir(data_dir))


__all__ = ["DataError", "LoadProblem", "MaterialsDataset", "LOADERS", "load_dataset", "resolve_data_dir"]
