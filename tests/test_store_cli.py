"""The store's command line: refuses an un-migrated database, then upgrade, import, add, list."""

from __future__ import annotations

from typer.testing import CliRunner

from e2t_al.cli import app

runner = CliRunner()


def test_store_commands_from_upgrade_to_listing(tmp_path, monkeypatch):
    monkeypatch.setenv("E2T_AL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    config = tmp_path / "campaign.yaml"
    config.write_text("name: cli\ntarget: band_gap\nunit: eV\nvalid_min: 0\nvalid_max: 20\ncandidates: {csv: start.csv}\n"
                      "ensemble: {model: {encoder: {descriptors: [composition]}}}\n")
    (tmp_path / "start.csv").write_text("identifier,formula\nx0,LiF\n")
    refused = runner.invoke(app, ["campaigns", "list"])
    assert refused.exit_code == 2 and "e2t-al db upgrade" in refused.output

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    (tmp_path / "c.csv").write_text("identifier,formula\nx1,NaCl\nx2,KBr\n")
    created = runner.invoke(app, ["campaigns", "create", "--config", str(config)])
    assert created.exit_code == 0, created.output
    bad = tmp_path / "bad.csv"
    bad.write_text("identifier,formula\nx1,NaCl\nx2,Qq\n")
    refused = runner.invoke(app, ["candidates", "import", "--campaign", "cli", "--csv", str(bad)])
    assert refused.exit_code == 2 and "line 3" in refused.output and "nothing written" in refused.output
    assert runner.invoke(app, ["candidates", "import", "--campaign", "cli", "--csv", str(tmp_path / "c.csv")]).exit_code == 0

    added = runner.invoke(app, ["measurements", "add", "--campaign", "cli", "--candidate", "x1", "--value", "5200",
                                "--unit", "meV", "--operator", "alice"])
    assert added.exit_code == 0, added.output
    twice = runner.invoke(app, ["measurements", "add", "--campaign", "cli", "--candidate", "x1", "--value", "5200",
                                "--unit", "meV", "--operator", "alice"])
    assert twice.exit_code == 2 and "already" in twice.output
    listed = runner.invoke(app, ["measurements", "list", "--campaign", "cli"], terminal_width=200)
    assert "x1" in listed.output and "5200" in listed.output
