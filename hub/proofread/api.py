"""Proofreading API: check a text, maintain the lexicon rows and the leaders registry (admins,
audited), list acknowledged warnings and inspectors' findings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from hub.accounts.models import Account
from hub.config import get_settings
from hub.orgs.models import Org
from hub.proofread import service
from hub.proofread.models import (
    Acknowledgement,
    AcknowledgementPublic,
    CheckBody,
    EntryCreate,
    EntryPublic,
    EntryUpdate,
    Finding,
    FindingCreate,
    FindingPublic,
    HitPublic,
    LeaderCreate,
    LeaderPublic,
    LeaderRow,
    LeaderUpdate,
    LexiconRow,
)
from hub.proofread.presets import preset_entries
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, WhoDep

router = APIRouter(prefix="/api/v1/proofread", tags=["proofreading"])


@router.post(
    "/check",
    summary="Proofread a text (the compose page, as you type)",
    response_model=list[HitPublic],
)
def check(
    body: CheckBody, principal: PrincipalDep, who: WhoDep, session: SessionDep
) -> list[HitPublic]:
    principal.require(Action.post_read)
    org = service.readable_org(session, who, body.org_code)
    hits = service.check(session, org, {"text": body.text})
    return [HitPublic(**service.hit_public(h)) for h in hits]


def _entry_public(row: LexiconRow, org: Org) -> EntryPublic:
    return EntryPublic(
        id=row.id,
        org_code=org.code,
        category=row.category,
        term=row.term,
        correct=row.correct,
        message=row.message,
        severity=row.severity,
        exceptions=row.exceptions,
        enabled=row.enabled,
        source=org.name,
    )


@router.get(
    "/entries",
    summary="Lexicon rows in force for an org (its own and its ancestors')",
    response_model=list[EntryPublic],
)
def entries(
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
    presets: bool = False,
) -> list[EntryPublic]:
    principal.require(Action.post_read)
    scope = service.readable_org(session, who, org)
    out = []
    if presets:
        out = [
            EntryPublic(
                id=None,
                org_code="",
                category=e.category.value,
                term=e.term,
                correct=e.correct,
                message=e.message,
                severity=e.severity.value,
                exceptions=list(e.exceptions),
                enabled=True,
                source=e.source,
            )
            for e in preset_entries(tuple(get_settings().policies))
        ]
    return out + [_entry_public(r, o) for r, o in service.entries_of(session, scope)]


@router.post(
    "/entries",
    summary="Add (or switch off) an entry for an org's subtree",
    status_code=201,
    response_model=EntryPublic,
)
def add_entry(data: EntryCreate, who: WhoDep, session: SessionDep) -> EntryPublic:
    row = service.add_entry(session=session, who=who, data=data, now=utcnow())
    session.commit()
    org = session.get(Org, row.org_id)
    assert org is not None
    return _entry_public(row, org)


@router.patch(
    "/entries/{entry_id}", summary="Change or switch off an entry", response_model=EntryPublic
)
def update_entry(entry_id: Id, data: EntryUpdate, who: WhoDep, session: SessionDep) -> EntryPublic:
    row = service.update_entry(session=session, who=who, entry_id=entry_id, data=data, now=utcnow())
    session.commit()
    org = session.get(Org, row.org_id)
    assert org is not None
    return _entry_public(row, org)


def _leader_public(row: LeaderRow, org: Org) -> LeaderPublic:
    assert row.id is not None
    return LeaderPublic(
        id=row.id,
        org_code=org.code,
        org_name=org.name,
        name=row.name,
        title=row.title,
        rank=row.rank,
        active=row.active,
        note=row.note,
    )


@router.get(
    "/leaders",
    summary="The leaders registry of the caller's province",
    response_model=list[LeaderPublic],
)
def leaders(
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
) -> list[LeaderPublic]:
    principal.require(Action.post_read)
    scope = service.readable_org(session, who, org)
    return [_leader_public(r, o) for r, o in service.leaders_of(session, scope)]


@router.post(
    "/leaders",
    summary="Register a leader (name, title, protocol order)",
    status_code=201,
    response_model=LeaderPublic,
)
def add_leader(data: LeaderCreate, who: WhoDep, session: SessionDep) -> LeaderPublic:
    row = service.add_leader(session=session, who=who, data=data, now=utcnow())
    session.commit()
    org = session.get(Org, row.org_id)
    assert org is not None
    return _leader_public(row, org)


@router.patch(
    "/leaders/{leader_id}",
    summary="Change a leader's title, order or status",
    response_model=LeaderPublic,
)
def update_leader(
    leader_id: Id,
    data: LeaderUpdate,
    who: WhoDep,
    session: SessionDep,
) -> LeaderPublic:
    row = service.update_leader(
        session=session,
        who=who,
        leader_id=leader_id,
        data=data,
        now=utcnow(),
    )
    session.commit()
    org = session.get(Org, row.org_id)
    assert org is not None
    return _leader_public(row, org)


@router.get(
    "/acknowledgements",
    summary="Warnings reviewers let through, with their reasons",
    response_model=list[AcknowledgementPublic],
)
def acknowledgements(
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AcknowledgementPublic]:
    principal.require(Action.post_read)
    scope = service.readable_org(session, who, org)
    rows = session.exec(
        select(Acknowledgement, Org, User)
        .join(Org, col(Org.id) == col(Acknowledgement.org_id))
        .join(User, col(User.id) == col(Acknowledgement.reviewer_id))
        .where(col(Org.path).startswith(scope.path))
        .order_by(col(Acknowledgement.id).desc())
        .limit(limit)
    ).all()
    return [
        AcknowledgementPublic(
            id=a.id,
            post_id=a.post_id,
            version=a.version,
            org_code=o.code,
            reviewer=u.username,
            category=a.category,
            text=a.text,
            message=a.message,
            reason=a.reason,
            at=a.at,
        )
        for a, o, u in rows
    ]


@router.post(
    "/findings",
    summary="Record an inspector's finding of a serious misstatement",
    status_code=201,
    response_model=FindingPublic,
)
def add_finding(data: FindingCreate, who: WhoDep, session: SessionDep) -> FindingPublic:
    row = service.record_finding(session=session, who=who, data=data, now=utcnow())
    session.commit()
    return _findings(session, [row])[0]


@router.get(
    "/findings", summary="Inspectors' findings within reach", response_model=list[FindingPublic]
)
def findings(
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    org: Annotated[str | None, Query(max_length=32)] = None,
) -> list[FindingPublic]:
    principal.require(Action.post_read)
    scope = service.readable_org(session, who, org)
    rows = session.exec(
        select(Finding)
        .join(Org, col(Org.id) == col(Finding.org_id))
        .where(col(Org.path).startswith(scope.path))
        .order_by(col(Finding.found_on).desc(), col(Finding.id).desc())
    ).all()
    return _findings(session, list(rows))


def _findings(session: SessionDep, rows: list[Finding]) -> list[FindingPublic]:
    out = []
    for row in rows:
        account = session.get(Account, row.account_id)
        org = session.get(Org, row.org_id)
        user = session.get(User, row.recorded_by)
        out.append(
            FindingPublic(
                id=row.id,
                account_id=row.account_id,
                account_name=account.name if account else "",
                org_code=org.code if org else "",
                link=row.link,
                found_on=row.found_on,
                text=row.text,
                note=row.note,
                recorded_by=user.username if user else "",
                at=row.at,
            )
        )
    return out
