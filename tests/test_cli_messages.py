"""Each mistake a new user made gets a message they can act on, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from db.engine import make_engine
from db.tables import Campaign, Candidate, Measurement
from e2t_al.cli import app

runner = CliRunner()
CONFIG = """name: {name}
target: band_gap
unit: eV
valid_min: 0
valid_max: 20
candidates: {{csv: {csv}}}
ensemble: {{model: {{encoder: {{descriptors: [{descriptors}]}}}}}}
"""


def run(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


def rows(url: str, table) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        n = session.exec(select(func.count()).select_from(table)).one()
    engine.dispose()
    return n


@pytest.fixture
def lab(tmp_path: Path, monkeypatch):
    """A store with one small formula campaign ``lab`` (no prior data) and no operator in the environment."""
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    monkeypatch.setenv("E2T_AL_DATABASE_URL", url)
    monkeypatch.delenv("E2T_AL_OPERATOR", raising=False)
    (tmp_path / "candidates.csv").write_text("identifier,formula\nc1,CsPbI3\nc2,SrTiO3\nc3,ZnO\n")
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.format(name="lab", csv=tmp_path / "candidates.csv", descriptors="composition"))
    assert run("db", "upgrade").exit_code == 0
    created = run("campaigns", "create", "--config", str(config))
    assert created.exit_code == 0, created.output
    return url, tmp_path


def test_unknown_unit_lists_the_campaigns_units_and_the_likely_spelling(lab):
    url, _ = lab
    result = run("measurements", "add", "--campaign", "lab", "--candidate", "c1", "--value", "1.7", "--unit", "ev",
                 "--operator", "alice")
    assert result.exit_code == 2
    assert "did you mean 'eV'?" in result.output and "energy units are 'eV', 'meV'" in result.output
    assert rows(url, Measurement) == 0


def test_a_config_typo_names_the_key_and_the_closest_valid_one(lab):
    url, folder = lab
    config = folder / "typo.yaml"
    config.write_text(CONFIG.format(name="typo", csv=folder / "candidates.csv", descriptors="composition")
                      + "acquisiton: {batch_size: 2}\n")
    result = run("campaigns", "create", "--config", str(config))
    assert result.exit_code == 2
    assert "unknown key 'acquisiton'; did you mean 'acquisition'?" in result.output
    assert "Extra inputs are not permitted" not in result.output
    assert rows(url, Campaign) == 1


def test_a_missing_operator_says_how_to_give_one(lab, tmp_path):
    url, _ = lab
    result = run("measurements", "add", "--campaign", "lab", "--candidate", "c1", "--value", "1.7", "--unit", "eV")
    assert result.exit_code == 2 and "--operator NAME" in result.output and "E2T_AL_OPERATOR" in result.output
    csv = tmp_path / "no-operator.csv"
    csv.write_text("candidate,value,unit\nc1,1.7,eV\n")
    result = run("measurements", "import", str(csv), "--campaign", "lab")
    assert result.exit_code == 2 and "no operator column" in result.output and "--operator NAME" in result.output
    assert rows(url, Measurement) == 0


def test_a_semicolon_csv_is_named_as_such(lab, tmp_path):
    url, _ = lab
    csv = tmp_path / "semicolons.csv"
    csv.write_text("candidate;value;unit;operator\nc1;1,7;eV;alice\n")
    result = run("measurements", "import", str(csv), "--campaign", "lab")
    assert result.exit_code == 2 and "separated by semicolons, not commas" in result.output
    candidates = tmp_path / "candidates-semicolon.csv"
    candidates.write_text("identifier;formula\nc9;NaCl\n")
    result = run("candidates", "import", "--campaign", "lab", "--csv", str(candidates))
    assert result.exit_code == 2 and "separated by semicolons" in result.output
    assert rows(url, Measurement) == 0 and rows(url, Candidate) == 3


def test_an_unreachable_database_is_one_line_with_the_masked_url(monkeypatch):
    url = "postgresql+psycopg://lab:s3cret-pw@127.0.0.1:1/e2t"
    monkeypatch.setenv("E2T_AL_DATABASE_URL", url)
    result = run("campaigns", "list")
    assert result.exit_code == 1
    assert "cannot reach the database postgresql+psycopg://lab:***@127.0.0.1:1/e2t" in result.output
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 4  # one message (wrapped at most by the terminal)
    debug = run("--debug", "campaigns", "list")
    assert debug.exit_code != 0 and debug.exception is not None  # --debug lets the real error through


def test_descriptors_that_do_not_fit_are_refused_at_create_naming_those_that_do(lab):
    url, folder = lab
    config = folder / "wrong-descriptors.yaml"
    config.write_text(CONFIG.format(name="wrong", csv=folder / "candidates.csv", descriptors="site_elements, cation"))
    result = run("campaigns", "create", "--config", str(config))
    assert result.exit_code == 2
    assert "['site_elements', 'cation'] do not apply to formula candidates" in result.output and "['composition']" in result.output
    assert rows(url, Campaign) == 1


def test_a_candidate_of_another_representation_is_refused_at_import_with_its_line(lab, tmp_path):
    url, _ = lab
    csv = tmp_path / "smiles.csv"
    csv.write_text("identifier,smiles\np1,*CC*\n")
    result = run("candidates", "import", "--campaign", "lab", "--csv", str(csv))
    assert result.exit_code == 2
    assert "line 2 (p1): a smiles candidate, but this campaign's candidates are formula" in result.output
    assert rows(url, Candidate) == 3


def test_prior_duplicates_are_listed_and_the_lab_chooses(lab, data_dir):
    url, folder = lab
    config = folder / "with-prior.yaml"
    text = CONFIG.format(name="with-prior", csv=folder / "candidates.csv", descriptors="composition") + "prior: [{dataset: mp}]\n"
    config.write_text(text)
    asked = run("campaigns", "create", "--config", str(config))
    assert asked.exit_code == 2 and "duplicate prior data" in asked.output and "keep_own" in asked.output
    assert "c2" in asked.output and "same reduced composition" in asked.output
    assert rows(url, Campaign) == 1
    config.write_text(text + "prior_duplicates: skip_own\n")
    skipped = run("campaigns", "create", "--config", str(config))
    assert skipped.exit_code == 0, skipped.output
    assert "skipped yours" in skipped.output
