"""Spokespersons (新闻发言人) per org: appointments, history and filing status (§1, §4).

Appointing someone ends the previous holder of the same role on that day; rows are never
deleted, so the history is the table.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.audit.models import (
    Spokesperson,
    SpokespersonCreate,
    SpokespersonPublic,
    SpokespersonRole,
    SpokespersonUpdate,
)
from hub.audit.rules import spokesperson_filing
from hub.errors import Invalid, NotFound
from hub.orgs.models import Org
from hub.policies import Policy
from hub.sqltypes import utcnow


def history(*, session: Session, org: Org) -> list[Spokesperson]:
    """Every appointment of the org, newest first."""
    return list(
        session.exec(
            select(Spokesperson)
            .where(Spokesperson.org_id == org.id)
            .order_by(col(Spokesperson.appointed_on).desc(), col(Spokesperson.id).desc())
        ).all()
    )


def appoint(*, session: Session, org: Org, data: SpokespersonCreate) -> Spokesperson:
    name = data.name.strip()
    if not name:
        raise Invalid("请填写新闻发言人姓名", field="name")
    for day, label in ((data.filed_on, "filed_on"), (data.published_on, "published_on")):
        if day is not None and day < data.appointed_on:
            raise Invalid("%(label)s不能早于任命日期", field=label, label=label)
    current = [p for p in history(session=session, org=org) if p.role is data.role]
    for person in current:
        if person.ended_on is None:
            if person.appointed_on > data.appointed_on:
                raise Invalid(
                    "%(person)s的任命日期是%(appointed_on)s，晚于%(appointed_on2)s；请填写更晚的任命日期",
                    field="appointed_on",
                    person=person.name,
                    appointed_on=person.appointed_on,
                    appointed_on2=data.appointed_on,
                )
            person.ended_on = data.appointed_on
            person.updated_at = utcnow()
            session.add(person)
    person = Spokesperson(
        org_id=org.id,  # type: ignore[arg-type]
        name=name,
        role=data.role,
        title=data.title.strip(),
        phone=data.phone.strip(),
        email=data.email.strip(),
        appointed_on=data.appointed_on,
        filed_on=data.filed_on,
        published_on=data.published_on,
    )
    session.add(person)
    session.flush()
    return person


def get(*, session: Session, org: Org, person_id: int) -> Spokesperson:
    person = session.get(Spokesperson, person_id)
    if person is None or person.org_id != org.id:
        raise NotFound("%(org)s没有新闻发言人记录 %(person_id)s", org=org.name, person_id=person_id)
    return person


def update(*, session: Session, person: Spokesperson, data: SpokespersonUpdate) -> list[str]:
    changed: list[str] = []
    for name in ("title", "phone", "email", "ended_on", "filed_on", "published_on"):
        value = getattr(data, name)
        if value is not None and getattr(person, name) != value:
            if isinstance(value, date) and value < person.appointed_on:
                raise Invalid("%(name)s不能早于任命日期", field=name, name=name)
            setattr(person, name, value)
            changed.append(name)
    if changed:
        person.updated_at = utcnow()
        session.add(person)
    return changed


def overview(
    *, session: Session, org: Org, policy: Policy, today: date, tz: ZoneInfo
) -> dict[str, Any]:
    """Current holders, the filing status of the latest change, and the history."""
    rows = history(session=session, org=org)
    current = {
        role.value: next(
            (
                SpokespersonPublic.model_validate(p).model_dump(mode="json")
                for p in rows
                if p.role is role
                and p.appointed_on <= today
                and (p.ended_on is None or p.ended_on > today)
            ),
            None,
        )
        for role in SpokespersonRole
    }
    latest = next((p for p in rows if p.role is SpokespersonRole.spokesperson), None)
    filing: dict[str, Any] | None = None
    if latest is not None:
        state = spokesperson_filing(
            policy, latest.appointed_on, latest.filed_on, latest.published_on, today, tz=tz
        )
        filing = {
            "changed_on": latest.appointed_on.isoformat(),
            "due_on": state.due_on.isoformat() if state.due_on else None,
            "filed_on": latest.filed_on.isoformat() if latest.filed_on else None,
            "published_on": latest.published_on.isoformat() if latest.published_on else None,
            "status": state.status,
        }
    return {
        "org_code": org.code,
        "org_name": org.name,
        "current": current,
        "filing": filing,
        "history": [SpokespersonPublic.model_validate(p).model_dump(mode="json") for p in rows],
    }
