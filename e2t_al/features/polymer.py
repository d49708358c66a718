"""Descriptors of polymer repeat units from RDKit: count-based Morgan fingerprints and RDKit descriptors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors, rdFingerprintGenerator

MORGAN_RADIUS = 2
MORGAN_BITS = 1024
DESCRIPTOR_CLIP = 1e6  # a few RDKit descriptors overflow on dummy (*) atoms


def morgan_names() -> list[str]:
    return [f"morgan_{i}" for i in range(MORGAN_BITS)]


@lru_cache(maxsize=1)
def _morgan_generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)


def morgan_counts(mol: Chem.Mol) -> np.ndarray:
    """Count-based Morgan fingerprint (radius 2, 1024 folded bits), shape ``(1024,)``."""
    return _morgan_generator().GetCountFingerprintAsNumPy(mol).astype(float)


def rdkit_descriptor_names() -> list[str]:
    return [f"rdkit_{name}" for name, _ in Descriptors.descList]


def rdkit_descriptors(mol: Chem.Mol) -> np.ndarray:
    """All of RDKit's 2-D descriptors (``Descriptors.descList``); NaN where RDKit cannot compute one."""
    RDLogger.DisableLog("rdApp.*")
    values = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)
    out = np.array([values[name] for name, _ in Descriptors.descList], dtype=float)
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, -DESCRIPTOR_CLIP, DESCRIPTOR_CLIP)
