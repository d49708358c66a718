"""Descriptors and encoder inputs built from the real files."""

import numpy as np
import pytest
import torch

from e2t_al.config import E2TConfig, EncoderConfig
from e2t_al.data.dataset import DataError
from e2t_al.features import describe
from e2t_al.features.elements import element_property_table
from e2t_al.model.e2t import E2TRegressor
from e2t_al.model.inputs import CrystalGraphInputs, build_inputs


def test_element_table_comes_from_pymatgen_without_gaps():
    table = element_property_table()
    assert table.shape[0] == 94 and not table.isna().any().any()
    assert table.loc["F", "electronegativity"] == pytest.approx(3.98)
    assert table.loc["Pb", "Z"] == 82


def test_hoip_descriptors_separate_b_site_and_halide(hoip):
    sample = hoip.subset(np.arange(40))
    x, names = describe(sample, ["site_elements", "cation", "structure"])
    assert x.shape == (40, len(names)) and np.isfinite(x).all()
    b_z, x_z = x[:, names.index("B_Z")], x[:, names.index("X_Z")]
    expected_b = {"Ge": 32, "Sn": 50, "Pb": 82}
    expected_x = {"F": 9, "Cl": 17, "Br": 35, "I": 53}
    for i, domain in enumerate(sample.domains):
        metal, halide = domain.split("-")
        assert (b_z[i], x_z[i]) == (expected_b[metal], expected_x[halide])
    bonds = x[:, names.index("bx_mean")]
    assert np.all((bonds > 1.7) & (bonds < 3.6))  # B-X bond lengths in Å
    assert np.all(x[:, names.index("bx_coordination")] >= 4)


def test_polymer_and_mp_descriptors(polymers, mp):
    x, names = describe(polymers.subset(np.arange(20)), ["morgan", "rdkit"])
    assert x.shape[0] == 20 and names[0] == "morgan_0"
    assert x[:, :1024].sum() > 0 and np.all(x[:, :1024] >= 0)  # counts
    x, names = describe(mp.subset(np.arange(20)), ["composition"])
    assert np.isfinite(x).all() and "comp_mean_electronegativity" in names


def test_ecfp6_counts_are_radius_3_count_fingerprints(polymers):
    """ECFP6 (the E2T reference code's fingerprint) by hand for one repeat unit: RDKit's radius-3, 2,048-bit count
    Morgan fingerprint; it sees environments that radius 2 does not, so it has at least as many set bits."""
    from rdkit.Chem import rdFingerprintGenerator

    x, names = describe(polymers.subset(np.arange(5)), ["ecfp6"])
    assert x.shape == (5, 2048) and names[-1] == "ecfp6_2047"
    mols = polymers.subset(np.arange(5)).objects
    by_hand = np.array([rdFingerprintGenerator.GetMorganGenerator(radius=3, fpSize=2048).GetCountFingerprintAsNumPy(m)
                        for m in mols])
    np.testing.assert_array_equal(x, by_hand)
    radius_2 = np.array([rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetCountFingerprintAsNumPy(m)
                         for m in mols])
    assert (by_hand.sum(1) >= radius_2.sum(1)).all() and (by_hand.sum(1) > radius_2.sum(1)).any()


def test_descriptor_set_must_fit_the_data_set(mp):
    with pytest.raises(DataError, match="does not apply"):
        describe(mp.subset(np.arange(3)), ["cation"])


def test_crystal_graph_encoder_trains_on_real_structures(hoip):
    labelled = hoip.labelled("band_gap_GGA")
    index = np.concatenate([np.flatnonzero(labelled.domains == d)[:12] for d in ("Ge-I", "Sn-I", "Pb-I", "Ge-Br")])
    sample = labelled.subset(index)
    config = E2TConfig.model_validate({
        "encoder": {"kind": "crystal_graph", "graph_layers": 2, "graph_width": 16, "hidden": [16], "embedding_dim": 8},
        "episodes": {"query_size": 8},
        "training": {"max_steps": 6, "validate_every": 3, "validation_domains": 1},
    })
    inputs = build_inputs(sample, config.encoder)
    assert isinstance(inputs, CrystalGraphInputs) and len(inputs) == len(sample)
    batch = inputs.batch(torch.arange(3))
    assert batch.edges.max() < batch.node_features.shape[0] and (batch.edge_distances <= config.encoder.cutoff).all()
    y = sample.target("band_gap_GGA")
    model = E2TRegressor(config).fit(inputs, y, sample.domain_keys, progress=False)
    assert np.isfinite(model.predict(inputs, inputs, y)).all()


def test_crystal_graph_needs_structures(mp):
    with pytest.raises(DataError, match="needs structures"):
        build_inputs(mp.subset(np.arange(3)), EncoderConfig(kind="crystal_graph"))


def test_chgnet_crystal_features_are_computed_once_and_cached(hoip, mp, tmp_path, monkeypatch):
    """CHGNet's pretrained crystal features (offline: the weights ship in the wheel): 64 per structure, beside the
    other descriptor sets; a second call reads the disk cache without loading the model."""
    from e2t_al.features import crystal

    monkeypatch.setenv(crystal.CACHE_ENV, str(tmp_path))
    sample = hoip.subset(np.arange(3))
    x, names = describe(sample, ["site_elements", "chgnet"])
    chgnet = x[:, [i for i, n in enumerate(names) if n.startswith("chgnet_")]]
    assert chgnet.shape == (3, 64) and np.isfinite(chgnet).all() and np.ptp(chgnet, axis=0).max() > 0
    assert len(list(crystal.cache_dir().glob("*.npy"))) == 3

    def no_model():
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(crystal, "_model", no_model)
    again, _ = describe(sample, ["chgnet"])
    np.testing.assert_array_equal(again, chgnet)
    with pytest.raises(DataError, match="does not apply"):
        describe(mp.subset([0]), ["chgnet"])  # compositions, no structures
