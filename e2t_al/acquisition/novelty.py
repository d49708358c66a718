"""How far a candidate lies from what has been explored: by its element domain, and in the learned embedding."""

from __future__ import annotations

import numpy as np
import torch


def domain_elements(domain: str) -> frozenset[str]:
    """``Ge-F`` → {Ge, F}; a polymer class or any label without elements stays one token."""
    return frozenset(domain.split("-"))


def composition_novelty(domains: list[str], explored: set[str]) -> np.ndarray:
    """1 − max Jaccard similarity of a candidate's domain element set to any explored domain's: 0 for an explored
    domain, 1 for a domain sharing no element with any explored one. Shape ``(n,)``."""
    explored_sets = [domain_elements(d) for d in explored]
    cache: dict[str, float] = {}
    for domain in set(domains):
        if domain in explored or not explored_sets:
            cache[domain] = 0.0 if domain in explored else 1.0
            continue
        elements = domain_elements(domain)
        cache[domain] = 1.0 - max(len(elements & e) / len(elements | e) for e in explored_sets)
    return np.array([cache[d] for d in domains])


def embedding_novelty(pool_embeddings: torch.Tensor, explored_embeddings: torch.Tensor, chunk: int = 4096) -> np.ndarray:
    """Distance from each candidate to its nearest explored material in the embedding, in units of the typical
    nearest-neighbour distance among explored materials (so ~1 is "as close as explored materials are to each
    other" and larger is further out). Shapes ``(n, e)``, ``(m, e)`` → ``(n,)``."""
    if len(explored_embeddings) < 2:
        return np.ones(len(pool_embeddings))
    within = torch.cdist(explored_embeddings, explored_embeddings)
    within.fill_diagonal_(float("inf"))
    scale = within.min(dim=1).values.median().clamp_min(1e-9)
    nearest = torch.cat([torch.cdist(pool_embeddings[i:i + chunk], explored_embeddings).min(dim=1).values
                         for i in range(0, len(pool_embeddings), chunk)])
    return (nearest / scale).numpy()
