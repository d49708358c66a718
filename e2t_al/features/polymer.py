"""Descriptors of polymer repeat units from RDKit: count-based Morgan fingerprints (radius 2, 1,024 bits; and ECFP6,
radius 3, 2,048 bits, as the E2T reference code uses) and RDKit descriptors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors, rdFingerprintGenerator

MORGAN_RADIUS = 2
MORGAN_BITS = 1024
ECFP6_RADIUS = 3
ECFP6_BITS = 2048
DESCRIPTOR_CLIP = 1e6  # a few RDKit descriptors overflow on dummy (*) atoms


def morgan_names() -> list[str]:
    return [f"morgan_{i}" for i in range(MORGAN_BITS)]


@lru_cache(maxsize=2)
def _morgan_generator(radius: int = MORGAN_RADIUS, bits: int = MORGAN_BITS):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)


def morgan_counts(mol: Chem.Mol) -> np.ndarray:
    """Count-based Morgan fingerprint (radius 2, 1024 folded bits), shape ``(1024,)``."""
    return _morgan_generator().GetCountFingerprintAsNumPy(mol).astype(float)


def ecfp6_names() -> list[str]:
    return [f"ecfp6_{i}" for i in range(ECFP6_BITS)]


def ecfp6_counts(mol: Chem.Mol) -> np.ndarray:
    """Count-based ECFP6 (Morgan radius 3, 2048 folded bits), shape ``(2048,)``: the E2T reference code's polymer
    fingerprint."""
    return _morgan_generator(ECFP6_RADIUS, ECFP6_BITS).GetCountFingerprintAsNumPy(mol).astype(float)


def rdkit_descriptor_names() -> list[str]:
    return [f"rdkit_{name}" for name, _ in Descriptors.descList]


def rdkit_descriptors(mol: Chem.Mol) -> np.ndarray:
    """All of RDKit's 2-D descriptors (``Descriptors.descList``); NaN where RDKit cannot compute one."""
    RDLogger.DisableLog("rdApp.*")
    values = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)
    out = np.array([values[name] for name, _ in Descriptors.descList], dtype=float)
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, -DESCRIPTOR_CLIP, DESCRIPTOR_CLIP)
