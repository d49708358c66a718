"""The common shape every loader returns: materials with an id, a representation, targets and an element domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd


class DataError(ValueError):
    """Input data that cannot be used as given (missing file, malformed entry, unknown target or domain)."""


def object_array(items: Sequence[Any]) -> np.ndarray:
    """A 1-d numpy array of arbitrary Python objects (numpy would otherwise try to broadcast them)."""
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


@dataclass(frozen=True)
class LoadProblem:
    """One entry a loader skipped, and why: reported to the user, never silently dropped."""

    identifier: str
    reason: str


@dataclass
class MaterialsDataset:
    """Materials of one kind with their measured targets and element domains.

    Attributes:
        name: data-set name (``hoip``, ``polymers``, ``mp``).
        ids: one identifier per material, shape ``(n,)``.
        representations: what the material is, as a user would enter it (CIF text, SMILES, formula), ``(n,)``.
        objects: parsed form used by featurisers (pymatgen ``Structure``/``Composition``, RDKit ``Mol``), ``(n,)``.
        targets: one column per property, ``(n, n_targets)``; NaN where unmeasured.
        domains: display label of each material's element domain (``Ge-F``, polymer class ``13``, ``O-Ta``).
        domain_keys: what a hold-out can name for each material. A material belongs to the held-out part of
            key ``k`` when ``k`` is in its keys: HOIP and polymers have one key (the domain label); inorganic
            compounds have one key per element, so "every compound containing Fe" is a hold-out.
        problems: entries that were skipped while loading, with the reason.
        units: unit of each target column.
    """

    name: str
    ids: np.ndarray
    representations: np.ndarray
    objects: np.ndarray
    targets: pd.DataFrame
    domains: np.ndarray
    domain_keys: list[frozenset[str]]
    problems: list[LoadProblem] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        lengths = {len(self.representations), len(self.objects), len(self.targets), len(self.domains), len(self.domain_keys)}
        if lengths != {n}:
            raise DataError(f"{self.name}: columns have different lengths {sorted(lengths)} (expected {n})")
        if len(set(self.ids.tolist())) != n:
            raise DataError(f"{self.name}: duplicate material ids")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def target_names(self) -> list[str]:
        return list(self.targets.columns)

    def target(self, name: str) -> np.ndarray:
        """Values of one target property, shape ``(n,)``; NaN where unmeasured."""
        if name not in self.targets.columns:
            raise DataError(f"{self.name} has no target {name!r}; choose one of {self.target_names}")
        return self.targets[name].to_numpy(dtype=float)

    def all_domain_keys(self) -> list[str]:
        return sorted(set().union(*self.domain_keys))

    def in_domain(self, key: str) -> np.ndarray:
        """Boolean mask, shape ``(n,)``: materials that a hold-out of ``key`` removes."""
        if key not in set().union(*self.domain_keys):
            raise DataError(f"{self.name} has no element domain {key!r}; known: {', '.join(self.all_domain_keys())}")
        return np.array([key in keys for keys in self.domain_keys], dtype=bool)

    def subset(self, index: Sequence[int] | np.ndarray) -> "MaterialsDataset":
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return MaterialsDataset(
            name=self.name,
            ids=self.ids[index],
            representations=self.representations[index],
            objects=self.objects[index],
            targets=self.targets.iloc[index].reset_index(drop=True),
            domains=self.domains[index],
            domain_keys=[self.domain_keys[i] for i in index],
            problems=list(self.problems),
            units=dict(self.units),
            extra=dict(self.extra),
        )

    def labelled(self, target: str) -> "MaterialsDataset":
        """The materials whose ``target`` is measured."""
        return self.subset(np.isfinite(self.target(target)))

    def summary(self) -> pd.DataFrame:
        """Count per element domain."""
        return pd.Series(self.domains).value_counts().sort_index().rename_axis("domain").rename("count").reset_index()
