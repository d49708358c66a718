"""Descriptors of ABX3 hybrid perovskites: B-site and halide element properties, the organic cation, the structure."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Composition, Structure

from e2t_al.data.hoip import perovskite_domain
from e2t_al.features.elements import ELEMENT_PROPERTIES, composition_descriptor, composition_descriptor_names, element_vector

CATION_ELEMENTS = ("C", "H", "N", "O", "S")
OCTAHEDRON_RADIUS = 4.5  # Å: search radius for the B-X octahedron


def site_element_names() -> list[str]:
    return [f"{site}_{p}" for site in ("B", "X") for p in ELEMENT_PROPERTIES]


def site_element_descriptor(structure: Structure) -> np.ndarray:
    """Element properties of the B-site metal then the halide, shape ``(2 * n_properties,)``."""
    metal, halide = perovskite_domain(structure)
    return np.concatenate([element_vector(metal), element_vector(halide)])


def cation_names() -> list[str]:
    return [f"cation_n_{el}" for el in CATION_ELEMENTS] + ["cation_n_atoms", "cation_mass"] + composition_descriptor_names("cation")


def cation_descriptor(structure: Structure) -> np.ndarray:
    """The organic A-site cation: atom counts per element, size, mass and its composition descriptor."""
    metal, halide = perovskite_domain(structure)
    amounts = structure.composition.get_el_amt_dict()
    cation = Composition({el: n for el, n in amounts.items() if el not in (metal, halide)})
    counts = [amounts.get(el, 0.0) for el in CATION_ELEMENTS]
    return np.concatenate([counts, [cation.num_atoms, cation.weight], composition_descriptor(cation)])


def structure_names() -> list[str]:
    return [
        "volume_per_atom", "density", "volume_per_formula_unit", "lattice_a", "lattice_b", "lattice_c",
        "bx_mean", "bx_min", "bx_max", "bx_std", "bx_coordination", "xx_min",
    ]


def structure_descriptor(structure: Structure) -> np.ndarray:
    """Cell size and density, sorted lattice lengths, and the B-X octahedron: bond lengths and coordination."""
    metal, halide = perovskite_domain(structure)
    n_formula_units = structure.composition.get_el_amt_dict()[metal]
    b_sites = [i for i, site in enumerate(structure) if site.specie.symbol == metal]
    x_sites = [i for i, site in enumerate(structure) if site.specie.symbol == halide]
    bonds, coordination = [], []
    for i in b_sites:
        neighbours = sorted(n.nn_distance for n in structure.get_neighbors(structure[i], OCTAHEDRON_RADIUS) if n.specie.symbol == halide)
        nearest = neighbours[:6]
        bonds += nearest
        coordination.append(len(nearest))
    xx = [n.nn_distance for i in x_sites for n in structure.get_neighbors(structure[i], 6.0) if n.specie.symbol == halide]
    bonds = np.array(bonds) if bonds else np.array([np.nan])
    return np.array([
        structure.volume / len(structure), structure.density, structure.volume / n_formula_units,
        *sorted(structure.lattice.abc),
        bonds.mean(), bonds.min(), bonds.max(), bonds.std(), np.mean(coordination), min(xx) if xx else np.nan,
    ])
