"""What an encoder reads: a descriptor matrix, or crystal graphs built from pymatgen structures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from rich.progress import track

from e2t_al.config import EncoderConfig
from e2t_al.data.dataset import DataError, MaterialsDataset
from e2t_al.features import describe
from e2t_al.features.elements import element_property_table


class MaterialInputs(Protocol):
    """Encoder input for ``n`` materials; ``batch(index)`` gives what the encoder's ``forward`` takes."""

    def __len__(self) -> int: ...

    def batch(self, index: torch.Tensor): ...


@dataclass
class DescriptorInputs:
    """Descriptor matrix ``x`` of shape ``(n, p)`` (raw units; the encoder standardises)."""

    x: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        return self.x[index]


@dataclass
class GraphBatch:
    """Several crystal graphs as one: ``node_features (N, f)``, ``edges (2, E)`` as (centre, neighbour),
    ``edge_distances (E,)`` in Å, ``graph_of_node (N,)`` with values in ``[0, n_graphs)``."""

    node_features: torch.Tensor
    edges: torch.Tensor
    edge_distances: torch.Tensor
    graph_of_node: torch.Tensor
    n_graphs: int


@dataclass
class CrystalGraphInputs:
    """Per-structure graphs: atoms carry standardised element properties; edges join each atom to its
    ``max_neighbors`` nearest neighbours within ``cutoff`` (periodic images included)."""

    node_features: list[torch.Tensor]
    edges: list[torch.Tensor]
    edge_distances: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.node_features)

    def batch(self, index: torch.Tensor) -> GraphBatch:
        idx = index.tolist()
        sizes = torch.tensor([self.node_features[i].shape[0] for i in idx])
        offsets = torch.cumsum(sizes, 0) - sizes
        return GraphBatch(
            node_features=torch.cat([self.node_features[i] for i in idx]),
            edges=torch.cat([self.edges[i] + off for i, off in zip(idx, offsets.tolist())], dim=1),
            edge_distances=torch.cat([self.edge_distances[i] for i in idx]),
            graph_of_node=torch.repeat_interleave(torch.arange(len(idx)), sizes),
            n_graphs=len(idx),
        )


def standardised_element_table() -> dict[str, np.ndarray]:
    table = element_property_table()
    scaled = (table - table.mean()) / table.std().replace(0.0, 1.0)
    return {symbol: row.to_numpy(dtype=np.float32) for symbol, row in scaled.iterrows()}


def crystal_graph(structure, cutoff: float, max_neighbors: int, elements: dict[str, np.ndarray]):
    """Node features ``(N, f)``, edges ``(2, E)`` and distances ``(E,)`` of one periodic structure."""
    centres, neighbours, _, distances = structure.get_neighbor_list(r=cutoff)
    keep = []
    for atom in range(len(structure)):
        own = np.flatnonzero(centres == atom)
        keep.append(own[np.argsort(distances[own])[:max_neighbors]])
    keep = np.concatenate(keep) if keep else np.array([], dtype=int)
    if len(keep) == 0:
        raise DataError(f"structure {structure.composition.reduced_formula} has no neighbours within {cutoff} Å")
    nodes = np.vstack([elements[site.specie.symbol] for site in structure])
    edges = np.vstack([centres[keep], neighbours[keep]]).astype(np.int64)
    return torch.from_numpy(nodes), torch.from_numpy(edges), torch.from_numpy(distances[keep].astype(np.float32))


def build_inputs(dataset: MaterialsDataset, encoder: EncoderConfig, progress: bool = False) -> MaterialInputs:
    """Encoder inputs for every material of ``dataset``, as the encoder config asks."""
    if encoder.kind == "descriptor_mlp":
        x, names = describe(dataset, encoder.descriptors, progress=progress)
        return DescriptorInputs(torch.as_tensor(x, dtype=torch.float32), names)
    if dataset.name != "hoip":
        raise DataError(f"the crystal_graph encoder needs structures; data set {dataset.name!r} has none")
    elements = standardised_element_table()
    objects = track(dataset.objects, description="building crystal graphs") if progress else dataset.objects
    graphs = [crystal_graph(s, encoder.cutoff, encoder.max_neighbors, elements) for s in objects]
    nodes, edges, distances = (list(part) for part in zip(*graphs))
    return CrystalGraphInputs(nodes, edges, distances)


def subset_inputs(inputs: MaterialInputs, index: np.ndarray) -> MaterialInputs:
    """The inputs of materials ``index`` only (same type)."""
    if isinstance(inputs, DescriptorInputs):
        return DescriptorInputs(inputs.x[torch.as_tensor(index)], inputs.names)
    if isinstance(inputs, CrystalGraphInputs):
        return CrystalGraphInputs(*([part[i] for i in index] for part in (inputs.node_features, inputs.edges, inputs.edge_distances)))
    raise TypeError(f"unknown inputs {type(inputs).__name__}")
