from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hub.cli import app
from tests.factories import DATA

SECRET = "cli-secret-never-printed"


def test_operator_sets_up_a_matrix_from_the_command_line(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    imported = runner.invoke(app, ["orgs", "import", str(DATA / "guizhou-divisions.csv")])
    assert imported.exit_code == 0, imported.output
    assert "99 created" in imported.output
    again = runner.invoke(app, ["orgs", "import", str(DATA / "guizhou-divisions.csv")])
    assert "0 created" in again.output and "99 unchanged" in again.output

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,level,parent_code\n1,X,city,\n", encoding="utf-8")
    refused = runner.invoke(app, ["orgs", "import", str(bad)])
    assert refused.exit_code == 1 and "unknown level 'city'" in refused.output

    created = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "ops",
            "--password",
            "long-password",
            "--role",
            "admin",
            "--org",
            "520000",
        ],
    )
    assert created.exit_code == 0, created.output
    wrong_role = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "x",
            "--password",
            "long-password",
            "--role",
            "boss",
            "--org",
            "520000",
        ],
    )
    assert wrong_role.exit_code == 1 and "unknown role 'boss'" in wrong_role.output

    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"app_id": "wx1", "app_secret": SECRET}))
    added = runner.invoke(
        app,
        [
            "accounts",
            "add",
            "--org",
            "522601",
            "--platform",
            "wechat",
            "--name",
            "凯里发布",
            "--credentials",
            f"@{creds}",
            "--opened-on",
            "2014-05-01",
        ],
    )
    assert added.exit_code == 0, added.output
    unknown_org = runner.invoke(
        app, ["accounts", "add", "--org", "999999", "--platform", "hall", "--name", "x"]
    )
    assert unknown_org.exit_code == 1 and "999999" in unknown_org.output
    listed = runner.invoke(app, ["accounts", "list"])
    assert "522601\twechat\tactive\t凯里发布" in listed.output
    assert SECRET not in listed.output + added.output

    current = runner.invoke(app, ["db", "current"])
    assert current.output.strip() != "(empty)"
