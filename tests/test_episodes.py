"""Episode samplers keep the query domain out of the support (extrapolative), partly in (soft), or ignore it (same)."""

import numpy as np
import pytest

from e2t_al.config import EpisodeConfig
from e2t_al.data.dataset import DataError
from e2t_al.model.episodes import EpisodeSampler

DOMAINS = [frozenset({d}) for d in ["Ge-F"] * 30 + ["Ge-I"] * 25 + ["Pb-F"] * 20 + ["Sn-Cl"] * 40]
ELEMENT_SETS = [frozenset(s) for s in [{"Fe", "O"}] * 10 + [{"Fe", "S"}] * 10 + [{"Cu", "O"}] * 10 + [{"Zn", "S"}] * 10]


def _keys(keys, index):
    return set().union(*(keys[i] for i in index))


@pytest.mark.parametrize("keys", [DOMAINS, ELEMENT_SETS])
def test_extrapolative_support_never_contains_query_domain(keys):
    sampler = EpisodeSampler(keys, EpisodeConfig(sampler="extrapolative", support_size=None, query_size=8), seed=0)
    seen = set()
    for _ in range(200):
        e = sampler.sample()
        seen.add(e.query_domain)
        assert all(e.query_domain in keys[i] for i in e.query)
        assert all(e.query_domain not in keys[i] for i in e.support)
        assert not set(e.support) & set(e.query)
        assert len(e.query) == min(8, sum(e.query_domain in k for k in keys))
    assert seen == _keys(keys, range(len(keys)))  # every domain gets its turn as the query


def test_support_size_is_respected():
    sampler = EpisodeSampler(DOMAINS, EpisodeConfig(support_size=16, query_size=5), seed=1)
    e = sampler.sample()
    assert len(e.support) == 16 and len(set(e.support)) == 16


def test_soft_support_holds_a_fraction_of_the_query_domain():
    sampler = EpisodeSampler(DOMAINS, EpisodeConfig(sampler="soft", support_size=40, query_size=5, soft_fraction=0.2), seed=2)
    for _ in range(50):
        e = sampler.sample()
        inside = [i for i in e.support if e.query_domain in DOMAINS[i]]
        assert 0 < len(inside) <= 10  # 0.2 / 0.8 · 40 = 10
        assert not set(e.support) & set(e.query)


def test_same_mixes_domains():
    sampler = EpisodeSampler(DOMAINS, EpisodeConfig(sampler="same", support_size=None, query_size=20), seed=3)
    e = sampler.sample()
    assert e.query_domain is None
    assert len(_keys(DOMAINS, e.query)) > 1 and _keys(DOMAINS, e.query) & _keys(DOMAINS, e.support)
    assert len(e.support) + len(e.query) == len(DOMAINS)


def test_same_fraction_mixes_ordinary_episodes_into_extrapolative_training():
    sampler = EpisodeSampler(DOMAINS, EpisodeConfig(support_size=None, query_size=5, same_fraction=0.3), seed=4)
    episodes = [sampler.sample() for _ in range(2000)]
    same = [e for e in episodes if e.query_domain is None]
    assert len(same) / len(episodes) == pytest.approx(0.3, abs=0.04)
    for e in episodes:
        assert not set(e.support) & set(e.query)
        if e.query_domain is not None:  # the others still keep their query domain out of the support
            assert not any(e.query_domain in DOMAINS[i] for i in e.support)


def test_single_domain_cannot_be_extrapolated():
    with pytest.raises(DataError, match="cannot draw extrapolative"):
        EpisodeSampler([frozenset({"A"})] * 10, EpisodeConfig(), seed=0)


def test_level_gap_weights_query_the_edge_domains_more_often():
    levels = {"Ge-F": 5.0, "Ge-I": 2.0, "Pb-F": 4.0, "Sn-Cl": 3.0}
    targets = np.array([levels[next(iter(k))] for k in DOMAINS])
    config = EpisodeConfig(query_domain_weights="level_gap", level_gap_share=0.5)
    sampler = EpisodeSampler(DOMAINS, config, seed=0, targets=targets)
    weights = dict(zip(sampler.query_domains, sampler.query_weights))
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["Ge-F"] > weights["Ge-I"] > weights["Sn-Cl"] and min(weights.values()) >= 0.5 / 4
    drawn = [sampler.sample().query_domain for _ in range(4000)]
    assert drawn.count("Ge-F") / 4000 == pytest.approx(weights["Ge-F"], abs=0.03)
    uniform = EpisodeSampler(DOMAINS, EpisodeConfig(), seed=0)
    assert uniform.query_weights is None
    with pytest.raises(DataError, match="needs one target per material"):
        EpisodeSampler(DOMAINS, config, seed=0)
