"""RadonPy PI1070 polymers: repeat-unit SMILES (``*`` = attachment points), MD properties; domain = polymer class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger

from e2t_al.data.dataset import DataError, LoadProblem, MaterialsDataset, object_array
from e2t_al.data.paths import require_file

#: Columns that describe the simulation or the row, not a property of the polymer.
NON_TARGET_COLUMNS = frozenset({"monomer_ID", "smiles", "polymer_class", "temp", "press", "tacticity", "DP", "n_mol", "n_atom_mean", "Mn"})
STATISTIC_SUFFIXES = ("_min", "_max", "_std", "_count")
UNITS = {
    "Cp": "J/(kg K)", "Cv": "J/(kg K)", "density": "g/cm3", "thermal_conductivity": "W/(m K)",
    "thermal_diffusivity": "m2/s", "bulk_modulus": "GPa", "isentropic_bulk_modulus": "GPa",
    "compressibility": "1/Pa", "isentropic_compressibility": "1/Pa", "volume_expansion": "1/K",
    "linear_expansion": "1/K", "refractive_index": "", "static_dielectric_const": "", "Rg": "nm",
}


def parse_smiles(smiles: str) -> Chem.Mol:
    """An RDKit molecule from a repeat-unit SMILES; ``DataError`` when RDKit cannot read it."""
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles.strip() else None
    if mol is None:
        raise DataError(f"malformed SMILES {smiles!r}")
    return mol


def property_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns
        if c not in NON_TARGET_COLUMNS and not c.endswith(STATISTIC_SUFFIXES) and pd.api.types.is_numeric_dtype(frame[c])
    ]


def load_polymers(data_dir: Path) -> MaterialsDataset:
    frame = pd.read_csv(require_file(data_dir / "radonpy" / "PI1070.csv", "polymers"))
    for column in ("smiles", "polymer_class"):
        if column not in frame.columns:
            raise DataError(f"polymers: PI1070.csv lacks column {column!r}")
    targets = property_columns(frame)
    keep, mols, problems = [], [], []
    for row, (identifier, smiles, polymer_class) in enumerate(zip(frame.get("monomer_ID", frame.index), frame.smiles, frame.polymer_class)):
        name = f"PI1070-{identifier}"
        try:
            mol = parse_smiles(smiles)
        except DataError as exc:
            problems.append(LoadProblem(name, f"line {row + 2}: {exc}"))
            continue
        if pd.isna(polymer_class):
            problems.append(LoadProblem(name, f"line {row + 2}: no polymer_class"))
            continue
        keep.append(row)
        mols.append(mol)
    kept = frame.iloc[keep].reset_index(drop=True)
    domains = np.array([str(int(c)) for c in kept.polymer_class])
    return MaterialsDataset(
        name="polymers",
        ids=np.array([f"PI1070-{i}" for i in kept.get("monomer_ID", kept.index)]),
        representations=kept.smiles.to_numpy(dtype=object),
        objects=object_array(mols),
        targets=kept[targets].astype(float).reset_index(drop=True),
        domains=domains,
        domain_keys=[frozenset({d}) for d in domains],
        problems=problems,
        units={t: UNITS.get(t, "") for t in targets},
    )
