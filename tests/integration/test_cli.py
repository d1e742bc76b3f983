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
    assert refused.exit_code == 1 and "未知的级别 'city'" in refused.output

    created = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "ops",
            "--password",
            "Long-Password-2027",
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
            "Long-Password-2027",
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


DIVISIONS = (
    "code,name,level,parent_code,livelihood,press_office\n"
    "520000,贵州省,province,,否,是\n"
    "522600,黔东南苗族侗族自治州,prefecture,520000,是,否\n"
)


def _org_flags(database_url: str, code: str) -> tuple[str, bool]:
    from sqlmodel import Session, select

    from hub.db import engine_for
    from hub.orgs.models import Org

    with Session(engine_for(database_url)) as session:
        org = session.exec(select(Org).where(Org.code == code)).one()
        return org.name, org.livelihood


def test_orgs_import_reads_utf8_bom_and_gb18030_files(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    for encoding in ("utf-8", "utf-8-sig", "gb18030", "gbk"):
        path = tmp_path / f"divisions-{encoding}.csv"
        path.write_bytes(DIVISIONS.encode(encoding))
        result = runner.invoke(app, ["orgs", "import", str(path)])
        assert result.exit_code == 0, (encoding, result.output)
        assert "2 rows" in result.output
        assert _org_flags(hub_env["GOVHUB_DATABASE_URL"], "522600") == (
            "黔东南苗族侗族自治州",
            True,
        )
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x30\x81\x30\xff")
    refused = runner.invoke(app, ["orgs", "import", str(binary)])
    assert refused.exit_code == 1 and "UTF-8" in refused.output
    assert "Traceback" not in refused.output


def test_an_unknown_yes_no_value_is_refused_not_read_as_no(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "maybe.csv"
    path.write_text(DIVISIONS.replace("是,否\n", "maybe,否\n"), encoding="utf-8")
    result = CliRunner().invoke(app, ["orgs", "import", str(path)])
    assert result.exit_code == 1
    assert "第3行：livelihood 须为 yes/no" in result.output and "'maybe'" in result.output
    listed = CliRunner().invoke(app, ["orgs", "list"])
    assert "522600" not in listed.output  # nothing of the file was imported


def test_missing_files_and_bad_json_are_one_line_errors(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["orgs", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output

    base = ["accounts", "add", "--org", "520000", "--platform", "wechat", "--name", "x"]
    gone = runner.invoke(app, [*base, "--credentials", f"@{tmp_path / 'missing.json'}"])
    assert gone.exit_code == 2
    assert gone.output.strip() == f"error: {tmp_path / 'missing.json'}: no such file"
    broken = tmp_path / "broken.json"
    broken.write_text('{"app_id": "wx1",}', encoding="utf-8")
    bad_file = runner.invoke(app, [*base, "--credentials", f"@{broken}"])
    assert bad_file.exit_code == 2
    assert bad_file.output.startswith(f"error: {broken}: not valid JSON")
    assert len(bad_file.output.strip().splitlines()) == 1
    bad_inline = runner.invoke(app, [*base, "--credentials", "{app_id: wx1}"])
    assert bad_inline.exit_code == 2 and "--credentials: not valid JSON" in bad_inline.output
    not_object = runner.invoke(app, [*base, "--credentials", '["wx1"]'])
    assert not_object.exit_code == 2 and "JSON object" in not_object.output
