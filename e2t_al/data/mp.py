"""Materials Project inorganic compounds (elastic subset): formulas and properties; domain = the element set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element

from e2t_al.data.dataset import DataError, LoadProblem, MaterialsDataset, object_array
from e2t_al.data.paths import require_file

TARGETS = ("formation_energy_per_atom", "band_gap", "log_s_mod", "log_b_mod", "poisson_ratio")
UNITS = {"formation_energy_per_atom": "eV/atom", "band_gap": "eV", "log_s_mod": "ln(GPa)", "log_b_mod": "ln(GPa)", "poisson_ratio": ""}


def parse_formula(formula: str) -> Composition:
    """A pymatgen ``Composition``; ``DataError`` when the formula cannot be read or is empty."""
    try:
        composition = Composition(formula)
    except Exception as exc:
        raise DataError(f"malformed formula {formula!r}: {exc}") from exc
    if composition.num_atoms <= 0:
        raise DataError(f"malformed formula {formula!r}: no atoms")
    unknown = [str(el) for el in composition.elements if not Element.is_valid_symbol(str(el))]
    if unknown:
        raise DataError(f"malformed formula {formula!r}: not elements {unknown}")
    return composition


def element_domain(composition: Composition) -> str:
    """The element set as a label, e.g. ``O-Ta``."""
    return "-".join(sorted(el.symbol for el in composition.elements))


def load_mp(data_dir: Path) -> MaterialsDataset:
    frame = pd.read_csv(require_file(data_dir / "mp_elastic" / "materials.csv", "mp"))
    missing = [c for c in ("material_id", "formula", *TARGETS) if c not in frame.columns]
    if missing:
        raise DataError(f"mp: materials.csv lacks columns {missing}")
    keep, compositions, problems = [], [], []
    for row, (identifier, formula) in enumerate(zip(frame.material_id, frame.formula)):
        try:
            compositions.append(parse_formula(formula))
            keep.append(row)
        except DataError as exc:
            problems.append(LoadProblem(str(identifier), f"line {row + 2}: {exc}"))
    kept = frame.iloc[keep].reset_index(drop=True)
    return MaterialsDataset(
        name="mp",
        ids=kept.material_id.astype(str).to_numpy(),
        representations=kept.formula.to_numpy(dtype=object),
        objects=object_array(compositions),
        targets=kept[list(TARGETS)].astype(float).reset_index(drop=True),
        domains=np.array([element_domain(c) for c in compositions]),
        domain_keys=[frozenset(el.symbol for el in c.elements) for c in compositions],
        problems=problems,
        units=dict(UNITS),
    )
