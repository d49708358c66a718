"""Loaders on the real files in ../shared/data, and their handling of bad input."""

import numpy as np
import pytest

from e2t_al.data import DataError, load_dataset
from e2t_al.data.hoip import load_hoip, parse_cif
from e2t_al.data.mp import parse_formula
from e2t_al.data.paths import DATA_DIR_ENV, resolve_data_dir
from e2t_al.data.polymers import parse_smiles

DOMAIN_COUNTS = {"Ge-Br": 121, "Ge-Cl": 105, "Ge-F": 97, "Ge-I": 119, "Pb-Br": 105, "Pb-Cl": 110,
                 "Pb-F": 99, "Pb-I": 117, "Sn-Br": 124, "Sn-Cl": 120, "Sn-F": 106, "Sn-I": 122}


def test_hoip_reads_every_cif_and_reports_the_unlabelled_one(hoip):
    assert len(hoip) == 1346
    labelled = hoip.labelled("band_gap_GGA")
    assert len(labelled) == 1345
    assert dict(labelled.summary().itertuples(index=False)) == DOMAIN_COUNTS
    assert [p.identifier for p in hoip.problems] == ["perov_1346"]
    assert "no band gap" in hoip.problems[0].reason
    assert np.isnan(hoip.target("band_gap_GGA")[hoip.ids == "perov_1346"]).all()  # kept as a candidate
    first = np.flatnonzero(hoip.ids == "perov_1")[0]
    assert hoip.domains[first] == "Pb-I" and hoip.target("band_gap_GGA")[first] == pytest.approx(2.302)


def test_hoip_holdout_mask(hoip):
    labelled = hoip.labelled("band_gap_GGA")
    assert labelled.in_domain("Ge-F").sum() == 97
    with pytest.raises(DataError, match="no element domain 'Ge-At'"):
        labelled.in_domain("Ge-At")


def test_polymers_classes_and_targets(polymers):
    assert len(polymers) == 1077 and not polymers.problems
    assert {"Cp", "density", "thermal_conductivity", "refractive_index"} <= set(polymers.target_names)
    assert polymers.in_domain("13").sum() == 261
    assert polymers.units["Cp"] == "J/(kg K)"
    assert polymers.objects[0].GetNumAtoms() > 0


def test_mp_domains_are_element_sets(mp):
    assert len(mp) == 3162
    i = np.flatnonzero(mp.ids == "mp-1001011")[0]
    assert mp.domains[i] == "O-Ta" and mp.domain_keys[i] == frozenset({"O", "Ta"})
    containing_o = mp.in_domain("O")
    assert 0 < containing_o.sum() < len(mp)
    assert all("O" in mp.domain_keys[j] for j in np.flatnonzero(containing_o))


def test_unknown_target_is_a_clear_error(mp):
    with pytest.raises(DataError, match="no target 'bandgap'.*band_gap"):
        mp.target("bandgap")


def test_malformed_inputs_raise_data_errors():
    with pytest.raises(DataError, match="malformed CIF"):
        parse_cif("data_x\n_cell_length_a 3\nloop_\n_atom_site_label\n")
    with pytest.raises(DataError, match="malformed SMILES"):
        parse_smiles("C1CC(*")
    with pytest.raises(DataError, match="malformed formula"):
        parse_formula("Xx2Q")


def test_a_broken_cif_is_reported_not_crashed_on(tmp_path, data_dir):
    (tmp_path / "hoip" / "cifs").mkdir(parents=True)
    source = data_dir / "hoip" / "cifs"
    for name in ("perov_1.cif", "perov_2.cif"):
        (tmp_path / "hoip" / "cifs" / name).write_text((source / name).read_text())
    (tmp_path / "hoip" / "cifs" / "perov_3.cif").write_text("this is not a CIF")
    (tmp_path / "hoip" / "band_gaps.csv").write_text("id,band_gap_GGA,band_gap_HSE06\nperov_1,2.3,3.1\nperov_2,4.7,5.9\nperov_3,4.1,5.3\n")
    data = load_hoip(tmp_path)
    assert list(data.ids) == ["perov_1", "perov_2"]
    reasons = {p.identifier: p.reason for p in data.problems}
    assert "malformed CIF" in reasons["perov_3"]


def test_missing_data_folder_says_where_the_originals_are(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="(?s)does not exist.*public originals.*Sci. Data 4, 170057"):
        resolve_data_dir()
    with pytest.raises(DataError, match="(?s)missing .*PI1070.csv.*RadonPy"):
        load_dataset("polymers", tmp_path)
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("zeolites", tmp_path)
