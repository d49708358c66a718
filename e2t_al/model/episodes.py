"""Episode samplers: which materials form the support set S and which the query, in one training episode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from e2t_al.config import EpisodeConfig
from e2t_al.data.dataset import DataError

MIN_QUERY = 4  # a domain needs this many materials to be a query domain


@dataclass(frozen=True)
class Episode:
    """Index arrays into the training materials: ``support (n_s,)`` and ``query (n_q,)``, disjoint;
    ``query_domain`` is the domain key the query was drawn from (None for ``same``)."""

    support: np.ndarray
    query: np.ndarray
    query_domain: str | None


class EpisodeSampler:
    """Draws training episodes from materials with domain keys (``MaterialsDataset.domain_keys``).

    - ``extrapolative``: pick a domain key k; the query comes from materials having k and the support
      from materials *not* having k, so the model learns to predict a domain it has no example of (E2T).
    - ``soft``: as extrapolative, but a fraction ``soft_fraction`` of the support comes from k's other
      materials: few-shot episodes, the situation once a campaign has measured a few in a new domain.
    - ``same``: support and query drawn at random regardless of domain (ordinary, interpolative episodes).

    ``same_fraction`` mixes the two kinds: with that probability an episode of the extrapolative or soft sampler is a
    ``same`` episode instead, so the encoder also learns to interpolate inside the domains it has seen.

    ``support_size=None`` uses every eligible material as support.

    The query domain is drawn uniformly, or (``query_domain_weights="level_gap"``, needs ``targets``) with
        p_k = (1 − s)/D + s · g_k / Σ_j g_j,   g_k = | mean(y in k) − mean(y outside k) |,
    over the D query domains, s = ``level_gap_share``: domains whose level lies beyond the others' are queried
    more often, so the encoder learns to extrapolate to the edge of the measured range, not only within it.
    """

    def __init__(self, domain_keys: list[frozenset[str]], config: EpisodeConfig, seed: int = 0, targets: np.ndarray | None = None):
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.n = len(domain_keys)
        keys = sorted(set().union(*domain_keys)) if domain_keys else []
        self.members = {k: np.array([i for i, ks in enumerate(domain_keys) if k in ks]) for k in keys}
        self.query_domains = [k for k, m in self.members.items() if len(m) >= MIN_QUERY and self.n - len(m) >= MIN_QUERY]
        if config.sampler != "same" and not self.query_domains:
            raise DataError(f"no domain has {MIN_QUERY}+ materials with {MIN_QUERY}+ outside it: cannot draw extrapolative episodes")
        if not 0.0 <= config.soft_fraction < 1.0:
            raise DataError("soft_fraction must lie in [0, 1)")
        self.query_weights = self._query_weights(targets)  # (D,) or None: uniform

    def _query_weights(self, targets: np.ndarray | None) -> np.ndarray | None:
        c = self.config
        if c.query_domain_weights == "uniform" or c.sampler == "same":
            return None
        if targets is None or len(targets) != self.n:
            raise DataError(f"query_domain_weights {c.query_domain_weights!r} needs one target per material")
        y = np.asarray(targets)
        gaps = np.array([abs(y[self.members[k]].mean() - np.delete(y, self.members[k]).mean()) for k in self.query_domains])
        if not gaps.sum() > 0:
            return None
        return (1.0 - c.level_gap_share) / len(gaps) + c.level_gap_share * gaps / gaps.sum()

    def _same_episode(self) -> Episode:
        order = self.rng.permutation(self.n)
        n_query = min(self.config.query_size, self.n // 2)
        return Episode(self._pick(order[n_query:], self.config.support_size), order[:n_query], None)

    def _pick(self, pool: np.ndarray, size: int | None) -> np.ndarray:
        if size is None or size >= len(pool):
            return self.rng.permutation(pool)
        return self.rng.choice(pool, size=size, replace=False)

    def sample(self) -> Episode:
        c = self.config
        if c.sampler == "same" or (c.same_fraction > 0 and self.rng.random() < c.same_fraction):
            return self._same_episode()
        if self.query_weights is None:
            key = self.query_domains[self.rng.integers(len(self.query_domains))]
        else:
            key = self.query_domains[self.rng.choice(len(self.query_domains), p=self.query_weights)]
        inside = self.members[key]
        outside = np.setdiff1d(np.arange(self.n), inside)
        if c.sampler == "extrapolative":
            return Episode(self._pick(outside, c.support_size), self._pick(inside, c.query_size), key)
        # soft: hold back a query from the domain, let a few of the domain's others into the support
        query = self._pick(inside, min(c.query_size, len(inside) - 1))
        rest = np.setdiff1d(inside, query)
        n_outside = len(outside) if c.support_size is None else min(len(outside), c.support_size)
        n_inside = min(len(rest), int(round(n_outside * c.soft_fraction / (1.0 - c.soft_fraction))))
        support = np.concatenate([self._pick(outside, n_outside), self._pick(rest, n_inside)])
        return Episode(support, query, key)
