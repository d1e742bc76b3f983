"""The seed's yearly duties on the Guizhou matrix: who owes an online interview (§6), the
spokesperson evaluation (§4) and training (§20), and records on file meeting them."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.clocks import obligations, service
from hub.config import get_settings
from hub.db import engine_for
from hub.orgs.models import Org, OrgLevel

pytestmark = pytest.mark.integration


def owed(client: TestClient, headers: dict[str, str], kind: str) -> dict[str, str]:
    rows = client.get("/api/v1/obligations", params={"kind": kind}, headers=headers).json()
    return {o["org_code"]: o["status"] for o in rows if o["period"] == "2026"}


def test_yearly_duties_open_for_the_orgs_the_seed_names_and_records_meet_them(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    settings = get_settings()
    with Session(engine_for(url)) as session:
        obligations.refresh_obligations(
            session=session,
            policy=service.policy_in_force(settings),
            today=date(2026, 11, 10),
            tz=settings.tz,
        )
        session.commit()
        province = session.exec(select(Org).where(Org.code == "520000")).one()
        livelihood = {
            o.code
            for o in session.exec(
                select(Org).where(
                    Org.level == OrgLevel.department,
                    Org.parent_id == province.id,
                    col(Org.livelihood).is_(True),
                )
            ).all()
        }
        every = {o.code for o in session.exec(select(Org)).all()}
        press = {o.code for o in session.exec(select(Org).where(col(Org.press_office).is_(True)))}
    admin = auth["admin"]
    interviews = owed(client, admin, "online_interview")
    assert livelihood and set(interviews) == livelihood
    assert set(interviews.values()) == {"open"}
    assert set(owed(client, admin, "spokesperson_evaluation")) == press == {"520000-xwb"}
    assert set(owed(client, admin, "training")) == every

    interview_org = sorted(livelihood)[0]
    held = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "online_interview",
            "org_code": interview_org,
            "held_on": "2026-09-18",
            "title": "厅长做客省政府网站在线访谈",
        },
        headers=admin,
    )
    assert held.status_code == 201, held.text
    assert owed(client, admin, "online_interview")[interview_org] == "met"
    not_owed = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "online_interview",
            "org_code": "522601",
            "held_on": "2026-09-18",
            "title": "x",
        },
        headers=auth["kaili-editor"],
    )
    assert not_owed.status_code == 422  # a county owes no online interview
    evaluation = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "spokesperson_evaluation",
            "org_code": "520000-xwb",
            "held_on": "2026-11-02",
            "title": "2026年度全省新闻发言人绩效评估",
        },
        headers=auth["prov-editor"],
    )
    assert evaluation.status_code == 201
    assert owed(client, admin, "spokesperson_evaluation") == {"520000-xwb": "met"}
    training = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "training",
            "org_code": "522601",
            "held_on": "2026-10-12",
            "title": "凯里市政务公开与政务新媒体集中培训",
        },
        headers=auth["kaili-editor"],
    )
    assert training.status_code == 201
    trained = owed(client, admin, "training")
    assert trained["522601"] == "met" and trained["522622"] == "open"


def test_an_assistant_on_file_clears_the_assistant_finding(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    headers = auth["admin"]
    base = "/api/v1/orgs/522600/spokespersons"
    person = {
        "name": "李四",
        "appointed_on": "2013-11-01",
        "filed_on": "2013-11-05",
        "published_on": "2013-11-05",
    }
    assert client.post(base, json=person, headers=headers).status_code == 201

    def findings() -> set[str]:
        body = client.get(
            "/api/v1/audits/matrix",
            params={"as_of": "2014-06-30", "policy": "guizhou-2013"},
            headers=auth["supervisor"],
        ).json()
        return {f["code"] for f in body["findings"] if f["org_code"] == "522600"}

    assert "assistant_missing" in findings()
    assistant = {"name": "王助理", "role": "assistant", "appointed_on": "2014-01-02"}
    assert client.post(base, json=assistant, headers=headers).status_code == 201
    assert "assistant_missing" not in findings()
