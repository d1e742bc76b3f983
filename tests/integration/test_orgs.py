from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.db import engine_for
from hub.orgs.models import Org, OrgName
from hub.orgs.service import import_rows, parse_csv
from tests.factories import DATA

CSV = (DATA / "guizhou-divisions.csv").read_text("utf-8")


def test_import_is_idempotent_and_renames_keep_history_and_ids(hub_env: dict[str, str]) -> None:
    engine = engine_for(hub_env["GOVHUB_DATABASE_URL"])
    with Session(engine) as session:
        first = import_rows(session=session, rows=parse_csv(CSV), today=date(2014, 1, 1))
        session.commit()
    assert first.created == 99

    with Session(engine) as session:
        again = import_rows(session=session, rows=parse_csv(CSV), today=date(2015, 1, 1))
        session.commit()
        ids_before = {o.code: o.id for o in session.exec(select(Org)).all()}
    assert (again.created, again.renamed, again.unchanged) == (0, 0, 99)

    renamed = CSV.replace("520204,水城区", "520204,水城县")  # the 2013 name
    with Session(engine) as session:
        report = import_rows(session=session, rows=parse_csv(renamed), today=date(2020, 7, 1))
        session.commit()
        org = session.exec(select(Org).where(Org.code == "520204")).one()
        history = session.exec(
            select(OrgName).where(OrgName.org_id == org.id).order_by(OrgName.valid_from)
        ).all()
        ids_after = {o.code: o.id for o in session.exec(select(Org)).all()}
    assert report.renamed == 1
    assert org.name == "水城县"
    assert [(h.name, h.valid_to) for h in history] == [
        ("水城区", date(2020, 7, 1)),
        ("水城县", None),
    ]
    assert ids_after == ids_before


def test_import_rejects_unknown_levels_and_missing_parents(hub_env: dict[str, str]) -> None:
    import pytest

    from hub.errors import Invalid

    with pytest.raises(Invalid, match="第2行：未知的级别 'city'"):
        parse_csv("code,name,level,parent_code\n1,X,city,\n")
    with pytest.raises(Invalid, match="CSV 缺少以下列"):
        parse_csv("code,name\n1,X\n")
    with Session(engine_for(hub_env["GOVHUB_DATABASE_URL"])) as session:
        with pytest.raises(Invalid, match="上级机构 999999"):
            import_rows(
                session=session,
                rows=parse_csv("code,name,level,parent_code\n1,X,county,999999\n"),
                today=date(2020, 1, 1),
            )
        assert session.exec(select(Org)).all() == []


def test_orgs_api_filters(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    headers = auth["kaili-editor"]
    prefectures = client.get("/api/v1/orgs", params={"level": "prefecture"}, headers=headers)
    assert prefectures.status_code == 200
    assert len(prefectures.json()) == 9
    qdn = client.get("/api/v1/orgs", params={"parent": "522600"}, headers=headers).json()
    assert len(qdn) == 16 and all(o["parent_code"] == "522600" for o in qdn)
    livelihood = client.get("/api/v1/orgs", params={"livelihood": "true"}, headers=headers).json()
    assert {o["name"] for o in livelihood} >= {"贵州省教育厅", "贵州省公安厅"}
    assert all(o["level"] == "department" for o in livelihood)
    assert client.get("/api/v1/orgs/520900", headers=headers).json()["level"] == "new_area"
    missing = client.get("/api/v1/orgs", params={"parent": "123456"}, headers=headers)
    assert missing.status_code == 404
    assert "123456" in missing.json()["detail"]
    assert client.get("/api/v1/orgs").status_code == 401
