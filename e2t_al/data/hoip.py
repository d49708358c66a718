"""Hybrid organic-inorganic perovskites (Kim et al. 2017): CIFs + GGA/HSE06 band gaps; domain = B-site metal × halide."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Element, Structure

from e2t_al.data.dataset import DataError, LoadProblem, MaterialsDataset, object_array
from e2t_al.data.paths import require_file

TARGETS = ("band_gap_GGA", "band_gap_HSE06")
ORGANIC_ELEMENTS = frozenset({"H", "C", "N", "O", "S", "P"})


def perovskite_domain(structure: Structure) -> tuple[str, str]:
    """(B-site metal, halide) of an ABX3 hybrid perovskite, e.g. ``("Ge", "F")``.

    The halide is the group-17 element; the B site is the one element that is neither halide nor organic.
    Raises ``DataError`` when the structure has not exactly one of each.
    """
    symbols = {el.symbol for el in structure.composition.elements}
    halides = sorted(s for s in symbols if Element(s).group == 17)
    metals = sorted(symbols - ORGANIC_ELEMENTS - set(halides))
    if len(halides) != 1 or len(metals) != 1:
        raise DataError(f"not an ABX3 hybrid perovskite: B-site candidates {metals}, halides {halides}")
    return metals[0], halides[0]


def parse_cif(text: str) -> Structure:
    """A pymatgen ``Structure`` from CIF text; ``DataError`` with pymatgen's reason when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(text, fmt="cif")
    except Exception as exc:  # pymatgen raises ValueError, IndexError, KeyError... on bad CIFs
        raise DataError(f"malformed CIF: {exc}") from exc
    if len(structure) == 0:
        raise DataError("malformed CIF: no atoms")
    return structure


def _cif_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else -1


def load_hoip(data_dir: Path) -> MaterialsDataset:
    """Every ``hoip/cifs/*.cif`` with its band gaps. Unreadable or unlabelled CIFs go to ``problems``;
    unlabelled but readable ones stay in the data set as candidates with NaN targets."""
    folder = data_dir / "hoip"
    cif_dir = require_file(folder / "cifs", "hoip")
    labels = pd.read_csv(require_file(folder / "band_gaps.csv", "hoip")).set_index("id")
    missing = [t for t in TARGETS if t not in labels.columns]
    if missing:
        raise DataError(f"hoip: band_gaps.csv lacks columns {missing}")

    rows, problems = [], []
    for path in sorted(cif_dir.glob("*.cif"), key=_cif_number):
        identifier = path.stem
        text = path.read_text(errors="replace")
        try:
            structure = parse_cif(text)
            metal, halide = perovskite_domain(structure)
        except DataError as exc:
            problems.append(LoadProblem(identifier, str(exc)))
            continue
        if identifier in labels.index:
            values = labels.loc[identifier, list(TARGETS)].to_numpy(dtype=float)
        else:
            values = np.full(len(TARGETS), np.nan)
            problems.append(LoadProblem(identifier, "no band gap in band_gaps.csv (kept as an unlabelled candidate)"))
        rows.append((identifier, text, structure, values, f"{metal}-{halide}", metal, halide))
    if not rows:
        raise DataError(f"hoip: no readable CIF in {cif_dir}")
    unmatched = sorted(set(labels.index) - {r[0] for r in rows} - {p.identifier for p in problems})
    problems += [LoadProblem(i, "band gap given but no readable CIF") for i in unmatched]

    ids, texts, structures, values, domains, metals, halides = zip(*rows)
    return MaterialsDataset(
        name="hoip",
        ids=np.array(ids),
        representations=np.array(texts, dtype=object),
        objects=object_array(structures),
        targets=pd.DataFrame(np.vstack(values), columns=list(TARGETS)),
        domains=np.array(domains),
        domain_keys=[frozenset({d}) for d in domains],
        problems=problems,
        units={t: "eV" for t in TARGETS},
        extra={"b_site": np.array(metals), "halide": np.array(halides)},
    )
