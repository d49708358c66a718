"""Element properties from pymatgen, and composition descriptors built from them (no hand-typed tables)."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element

#: pymatgen ``Element`` attributes used as element properties (first available attribute wins).
ELEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Z": ("Z",),
    "electronegativity": ("X",),
    "row": ("row",),
    "group": ("group",),
    "atomic_mass": ("atomic_mass",),
    "atomic_radius": ("atomic_radius_calculated", "atomic_radius"),
    "ionic_radius": ("average_ionic_radius",),
    "vdw_radius": ("van_der_waals_radius",),
    "ionization_energy": ("ionization_energy",),
    "electron_affinity": ("electron_affinity",),
    "mendeleev_number": ("mendeleev_no",),
    "molar_volume": ("molar_volume",),
    "melting_point": ("melting_point",),
}
MAX_Z = 94


def _attribute(element: Element, names: tuple[str, ...]) -> float:
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = getattr(element, name)
        except Exception:
            continue
        if value is not None and np.isfinite(float(value)):
            return float(value)
    return float("nan")


@lru_cache(maxsize=1)
def element_property_table() -> pd.DataFrame:
    """Properties of elements Z = 1..94, shape ``(94, n_properties)``, indexed by symbol.

    A property pymatgen lacks for an element is filled with that property's median over the table.
    """
    symbols = [Element.from_Z(z).symbol for z in range(1, MAX_Z + 1)]
    table = pd.DataFrame(
        [[_attribute(Element(s), attrs) for attrs in ELEMENT_PROPERTIES.values()] for s in symbols],
        index=symbols,
        columns=list(ELEMENT_PROPERTIES),
    )
    return table.fillna(table.median())


def element_vector(symbol: str) -> np.ndarray:
    """The property vector of one element, shape ``(n_properties,)``."""
    table = element_property_table()
    if symbol not in table.index:
        raise ValueError(f"no element properties for {symbol!r} (Z > {MAX_Z} or not an element)")
    return table.loc[symbol].to_numpy()


STATISTICS = ("mean", "std", "min", "max")


def composition_descriptor_names(prefix: str = "comp") -> list[str]:
    return [f"{prefix}_{stat}_{p}" for stat in STATISTICS for p in ELEMENT_PROPERTIES] + [f"{prefix}_n_elements"]


def composition_descriptor(composition: Composition) -> np.ndarray:
    """Fraction-weighted mean and std, min and max of each element property, and the element count.

    Shape ``(4 * n_properties + 1,)``, ordered as ``composition_descriptor_names``.
    """
    fractions = composition.fractional_composition.get_el_amt_dict()
    symbols = list(fractions)
    weights = np.array([fractions[s] for s in symbols])
    values = np.vstack([element_vector(s) for s in symbols])  # (n_elements, n_properties)
    mean = weights @ values
    std = np.sqrt(np.maximum(weights @ (values - mean) ** 2, 0.0))
    return np.concatenate([mean, std, values.min(0), values.max(0), [len(symbols)]])
