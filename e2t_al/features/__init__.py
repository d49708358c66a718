"""Descriptor sets: each turns one parsed material into a fixed-length vector, with names for every column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from rich.progress import track

from e2t_al.data.dataset import DataError, MaterialsDataset
from e2t_al.features import perovskite, polymer
from e2t_al.features.elements import composition_descriptor, composition_descriptor_names


@dataclass(frozen=True)
class DescriptorSet:
    """A named descriptor: ``compute(obj) -> (p,)`` and its ``p`` column names; ``datasets`` it applies to."""

    names: Callable[[], list[str]]
    compute: Callable[[object], np.ndarray]
    datasets: tuple[str, ...]


def _composition_of(obj) -> object:
    return getattr(obj, "composition", obj)  # a Structure has one; a Composition is one


DESCRIPTOR_SETS: dict[str, DescriptorSet] = {
    "composition": DescriptorSet(composition_descriptor_names, lambda o: composition_descriptor(_composition_of(o)), ("hoip", "mp")),
    "site_elements": DescriptorSet(perovskite.site_element_names, perovskite.site_element_descriptor, ("hoip",)),
    "cation": DescriptorSet(perovskite.cation_names, perovskite.cation_descriptor, ("hoip",)),
    "structure": DescriptorSet(perovskite.structure_names, perovskite.structure_descriptor, ("hoip",)),
    "morgan": DescriptorSet(polymer.morgan_names, polymer.morgan_counts, ("polymers",)),
    "rdkit": DescriptorSet(polymer.rdkit_descriptor_names, polymer.rdkit_descriptors, ("polymers",)),
}


def describe(dataset: MaterialsDataset, descriptor_sets: list[str], progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """Descriptor matrix ``(n, p)`` of the data set and its ``p`` column names (NaN where a value is missing)."""
    for name in descriptor_sets:
        if name not in DESCRIPTOR_SETS:
            raise DataError(f"unknown descriptor set {name!r}; choose from {sorted(DESCRIPTOR_SETS)}")
        if dataset.name not in DESCRIPTOR_SETS[name].datasets:
            raise DataError(f"descriptor set {name!r} does not apply to data set {dataset.name!r}")
    sets = [DESCRIPTOR_SETS[n] for n in descriptor_sets]
    objects = track(dataset.objects, description=f"describing {dataset.name}") if progress else dataset.objects
    rows = [np.concatenate([s.compute(obj) for s in sets]) for obj in objects]
    names = [col for s in sets for col in s.names()]
    return np.vstack(rows).astype(np.float64), names
