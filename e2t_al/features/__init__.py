"""Descriptor sets: each turns one parsed material into a fixed-length vector, with names for every column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from rich.progress import track

from e2t_al.data.dataset import DataError, MaterialsDataset
from e2t_al.features import crystal, perovskite, polymer
from e2t_al.features.elements import composition_descriptor, composition_descriptor_names


@dataclass(frozen=True)
class DescriptorSet:
    """A named descriptor: its ``p`` column names, the ``datasets`` it applies to, and either ``compute(obj) -> (p,)``
    per material or ``compute_many(objects, progress) -> (n, p)`` for a whole data set at once (batched, cached)."""

    names: Callable[[], list[str]]
    compute: Callable[[object], np.ndarray] | None
    datasets: tuple[str, ...]
    compute_many: Callable[[list, bool], np.ndarray] | None = None


def _composition_of(obj) -> object:
    return getattr(obj, "composition", obj)  # a Structure has one; a Composition is one


DESCRIPTOR_SETS: dict[str, DescriptorSet] = {
    "composition": DescriptorSet(composition_descriptor_names, lambda o: composition_descriptor(_composition_of(o)), ("hoip", "mp")),
    "site_elements": DescriptorSet(perovskite.site_element_names, perovskite.site_element_descriptor, ("hoip",)),
    "cation": DescriptorSet(perovskite.cation_names, perovskite.cation_descriptor, ("hoip",)),
    "structure": DescriptorSet(perovskite.structure_names, perovskite.structure_descriptor, ("hoip",)),
    "morgan": DescriptorSet(polymer.morgan_names, polymer.morgan_counts, ("polymers",)),
    "ecfp6": DescriptorSet(polymer.ecfp6_names, polymer.ecfp6_counts, ("polymers",)),
    "rdkit": DescriptorSet(polymer.rdkit_descriptor_names, polymer.rdkit_descriptors, ("polymers",)),
    "chgnet": DescriptorSet(crystal.chgnet_names, None, ("hoip",), crystal.chgnet_features),
}


def describe(dataset: MaterialsDataset, descriptor_sets: list[str], progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """Descriptor matrix ``(n, p)`` of the data set and its ``p`` column names (NaN where a value is missing)."""
    for name in descriptor_sets:
        if name not in DESCRIPTOR_SETS:
            raise DataError(f"unknown descriptor set {name!r}; choose from {sorted(DESCRIPTOR_SETS)}")
        if dataset.name not in DESCRIPTOR_SETS[name].datasets:
            raise DataError(f"descriptor set {name!r} does not apply to data set {dataset.name!r}")
    sets = [DESCRIPTOR_SETS[n] for n in descriptor_sets]
    per_object = [s for s in sets if s.compute_many is None]
    objects = track(dataset.objects, description=f"describing {dataset.name}") if progress and per_object else dataset.objects
    rows = {id(s): [] for s in per_object}
    for obj in objects:
        for s in per_object:
            rows[id(s)].append(s.compute(obj))
    blocks = [np.vstack(rows[id(s)]).reshape(len(dataset), -1) if s.compute_many is None
              else s.compute_many(list(dataset.objects), progress) for s in sets]
    names = [col for s in sets for col in s.names()]
    return np.hstack(blocks).astype(np.float64), names
