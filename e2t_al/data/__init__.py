"""Loaders for the public materials data sets; each returns a ``MaterialsDataset``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from e2t_al.data.dataset import DataError, LoadProblem, MaterialsDataset
from e2t_al.data.hoip import load_hoip, parse_cif
from e2t_al.data.mp import load_mp, parse_formula
from e2t_al.data.paths import resolve_data_dir
from e2t_al.data.polymers import load_polymers, parse_smiles

LOADERS: dict[str, Callable[[Path], MaterialsDataset]] = {"hoip": load_hoip, "polymers": load_polymers, "mp": load_mp}
# Each bundled data set's representation kind; by kind, the parser that reads a material's text and the data set.
DATASET_KINDS: dict[str, str] = {"hoip": "cif", "polymers": "smiles", "mp": "formula"}
DATASET_OF_KIND: dict[str, str] = {kind: name for name, kind in DATASET_KINDS.items()}
PARSERS: dict[str, Callable[[str], object]] = {"cif": parse_cif, "smiles": parse_smiles, "formula": parse_formula}


def load_dataset(name: str, data_dir: str | Path | None = None) -> MaterialsDataset:
    """Load data set ``name`` (``hoip``, ``polymers`` or ``mp``) from the resolved data folder."""
    if name not in LOADERS:
        raise DataError(f"unknown data set {name!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[name](resolve_data_dir(data_dir))


__all__ = ["DataError", "LoadProblem", "MaterialsDataset", "LOADERS", "PARSERS", "DATASET_KINDS", "DATASET_OF_KIND", "load_dataset", "resolve_data_dir"]
