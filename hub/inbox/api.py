"""JSON API of the inbox: cases, their handling, routing rules, settings, statistics.

Editors and reviewers handle the cases of their org subtree (``case.handle``); supervisors read
every case (``case.read``); running an ingestion pass is for admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import Session

from hub.accounts.models import Account
from hub.config import Settings
from hub.errors import Invalid, NotFound
from hub.inbox import ingestion, replies, rules, service
from hub.inbox.models import (
    AssignBody,
    BulkTriageBody,
    Case,
    CaseCreate,
    CaseDetail,
    CasePublic,
    CaseStatus,
    Category,
    Channel,
    CloseBody,
    InboxSettingBody,
    IngestResult,
    NoteBody,
    OrgStats,
    Reply,
    ReplyBody,
    ReplyPublic,
    ReplyStatus,
    RoutingRule,
    RoutingRuleCreate,
    RoutingRulePublic,
    RoutingRuleUpdate,
    TransferBody,
    TriageBody,
)
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import MAX_INT, Id, utcnow
from hub.users.rules import Action, scope_path
from hub.users.who import Who
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["inbox"])


def _case(session: Session, principal: Principal, case_id: int, action: Action) -> Case:
    case = service.get_case(session=session, case_id=case_id)
    principal.reach(  # 404 outside the reach, 403 without the right, then the case's state
        action,
        orgs.get(session=session, org_id=case.org_id),
        NotFound("留言 %(case_id)s 不存在", case_id=case_id),
    )
    return case


def detail(session: Session, case: Case) -> CaseDetail:
    now = utcnow()
    public = service.to_public(session=session, cases=[case], now=now)[0]
    thread = service.to_public(
        session=session, cases=service.thread_cases(session=session, case=case), now=now
    )
    return CaseDetail(
        **public.model_dump(),
        thread=thread,
        events=service.events_public(session=session, case=case),
        replies=service.replies_public(session=session, case=case),
    )


@router.get("/cases", response_model=list[CasePublic])
def list_cases(
    session: SessionDep,
    principal: PrincipalDep,
    status: CaseStatus | None = None,
    category: Category | None = None,
    channel: Channel | None = None,
    org: str | None = None,
    overdue: bool = False,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> list[CasePublic]:
    """Cases in my scope, newest first (spam and abuse only when asked by category)."""
    principal.require(Action.case_read)
    org_path = None
    if org:
        target = orgs.get_by_code(session=session, code=org)
        principal.require(Action.case_read, target)
        org_path = target.path
    now = utcnow()
    cases = service.list_cases(
        session=session,
        scope_path=scope_path(principal.actor, Action.case_read),
        status=status,
        category=category,
        channel=channel,
        org_path=org_path,
        overdue_at=now if overdue else None,
        q=q,
        limit=limit,
        offset=offset,
    )
    return service.to_public(session=session, cases=cases, now=now)


@router.post("/cases", response_model=CaseDetail, status_code=201)
def create_case(
    body: CaseCreate,
    session: SessionDep,
    principal: PrincipalDep,
    who: WhoDep,
    settings: SettingsDep,
) -> CaseDetail:
    """Record a message that reached us another way (phone, letter) or on an account."""
    account = None
    if body.account_id is not None:
        account = session.get(Account, body.account_id)
        if account is None:
            raise NotFound("账号 %(account_id)s 不存在", account_id=body.account_id)
        org = orgs.get(session=session, org_id=account.org_id)
    elif body.org_code:
        org = orgs.get_by_code(session=session, code=body.org_code)
    else:
        raise Invalid("请提供账号（account_id）或机构代码（org_code）", field="org_code")
    principal.require(Action.case_handle, org)
    received = body.received_at or utcnow()
    if received.tzinfo is None:
        raise Invalid("收到时间（received_at）须带时区", field="received_at")
    incoming = ingestion.Incoming(
        channel=Channel.manual,
        remote_id=f"manual-{utcnow().timestamp():.6f}-{principal.user.id}",
        author_id=body.author_handle,
        author_handle=body.author_handle,
        text=body.text,
        received_at=received,
    )
    case = ingestion.receive(
        session=session,
        incoming=incoming,
        account=None,
        org=org,
        who=who,
        settings=settings,
    )
    assert case is not None
    if account is not None:
        case.account_id = account.id
    session.commit()
    return detail(session, case)


@router.get("/cases/stats", response_model=list[OrgStats])
def case_stats(
    session: SessionDep, principal: PrincipalDep, since: datetime | None = None
) -> list[OrgStats]:
    """Per org: volume, median hours to first response, % answered within the limit."""
    principal.require(Action.case_read)
    return [
        OrgStats(
            org_code=org.code,
            org_name=org.name,
            cases=s.cases,
            replied=s.replied,
            overdue_open=s.overdue_open,
            median_first_response_hours=s.median_first_response_hours,
            answered_within_limit_pct=s.answered_within_limit_pct,
        )
        for org, s in service.stats_per_org(
            session=session,
            scope_path=scope_path(principal.actor, Action.case_read),
            now=utcnow(),
            since=since,
        )
    ]


@router.post("/cases/ingest", response_model=IngestResult)
def ingest(principal: PrincipalDep, settings: SettingsDep) -> IngestResult:
    """Run one ingestion pass now (Weibo comments; admins)."""
    principal.require(Action.account_manage)
    principal.require(Action.case_handle)
    report = ingestion.ingest_all(settings=settings)
    return IngestResult(
        accounts_ok=report.accounts_ok,
        accounts_failed=report.accounts_failed,
        new_cases=report.new_cases,
        errors=report.errors,
    )


@router.post("/cases/triage", response_model=list[CasePublic])
def bulk_triage(
    body: BulkTriageBody, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> list[CasePublic]:
    """Triage many cases at once (all or none)."""
    cases = [_case(session, principal, i, Action.case_handle) for i in body.case_ids]
    for case in cases:
        service.triage(session=session, case=case, category=body.category, who=who)
    session.commit()
    return service.to_public(session=session, cases=cases, now=utcnow())


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(case_id: Id, session: SessionDep, principal: PrincipalDep) -> CaseDetail:
    return detail(session, _case(session, principal, case_id, Action.case_read))


@router.post("/cases/{case_id}/triage", response_model=CaseDetail)
def triage(
    case_id: Id, body: TriageBody, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> CaseDetail:
    case = _case(session, principal, case_id, Action.case_handle)
    service.triage(session=session, case=case, category=body.category, who=who)
    session.commit()
    return detail(session, case)


@router.post("/cases/{case_id}/assign", response_model=CaseDetail)
def assign(
    case_id: Id, body: AssignBody, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> CaseDetail:
    case = _case(session, principal, case_id, Action.case_handle)
    org = orgs.get_by_code(session=session, code=body.org_code)
    principal.require(Action.case_handle, org)
    service.assign(session=session, case=case, org=org, who=who)
    session.commit()
    return detail(session, case)


@router.post("/cases/{case_id}/transfer", response_model=CaseDetail)
def transfer(
    case_id: Id,
    body: TransferBody,
    session: SessionDep,
    principal: PrincipalDep,
    who: WhoDep,
) -> CaseDetail:
    """Transfer to another org (across departments, §13): history and clocks are kept."""
    case = _case(session, principal, case_id, Action.case_handle)
    org = orgs.get_by_code(session=session, code=body.org_code)
    service.transfer(session=session, case=case, org=org, reason=body.reason, who=who)
    session.commit()
    return detail(session, case)


@router.post("/cases/{case_id}/notes", response_model=CaseDetail, status_code=201)
def add_note(
    case_id: Id, body: NoteBody, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> CaseDetail:
    case = _case(session, principal, case_id, Action.case_handle)
    service.add_note(session=session, case=case, text=body.text, who=who)
    session.commit()
    return detail(session, case)


@router.post("/cases/{case_id}/replies", response_model=ReplyPublic, status_code=201)
def reply(
    case_id: Id,
    body: ReplyBody,
    session: SessionDep,
    principal: PrincipalDep,
    who: WhoDep,
    settings: SettingsDep,
) -> ReplyPublic:
    """Answer on the case's channel, as plain text; held for review when the org says so.

    The answer tells what happened: ``sent``, ``pending_review``, ``refused`` (e.g. WeChat's
    48-hour window: 请通过其他方式答复) or ``failed``, with ``error`` in words.
    """
    case = _case(session, principal, case_id, Action.case_handle)
    made = replies.create_reply(
        session=session,
        case=case,
        text=body.text,
        who=who,
        publish_on_hall=body.publish_on_hall,
        final=body.final,
        settings=settings,
    )
    session.commit()
    return _send(session, case, made, who, settings)


def _send(session: Session, case: Case, made: Reply, who: Who, settings: Settings) -> ReplyPublic:
    if made.status is ReplyStatus.queued:
        replies.send_reply(session=session, case=case, reply=made, who=who, settings=settings)
        session.commit()
    return _reply_public(session, case, made)


@router.post("/cases/{case_id}/replies/{reply_id}/approve", response_model=ReplyPublic)
def approve(
    case_id: Id,
    reply_id: Id,
    session: SessionDep,
    principal: PrincipalDep,
    who: WhoDep,
    settings: SettingsDep,
) -> ReplyPublic:
    """A reviewer (not the reply's author) approves a held reply: it is sent now."""
    case = _case(session, principal, case_id, Action.case_handle)
    made = session.get(Reply, reply_id)
    if made is None or made.case_id != case.id:
        raise NotFound(
            "留言 %(case_id)s 没有答复 %(reply_id)s",
            reply_id=reply_id,
            case_id=case_id,
        )
    replies.approve_reply(session=session, reply=made, who=who)
    session.commit()
    return _send(session, case, made, who, settings)


def _reply_public(session: Session, case: Case, made: Reply) -> ReplyPublic:
    return next(r for r in service.replies_public(session=session, case=case) if r.id == made.id)


@router.post("/cases/{case_id}/close", response_model=CaseDetail)
def close(
    case_id: Id, body: CloseBody, session: SessionDep, principal: PrincipalDep, who: WhoDep
) -> CaseDetail:
    case = _case(session, principal, case_id, Action.case_handle)
    service.close(session=session, case=case, reason=body.reason, who=who)
    session.commit()
    return detail(session, case)


# -- routing rules and settings -----------------------------------------------------------------


def _rule_public(rule: RoutingRule, org: Org) -> RoutingRulePublic:
    return RoutingRulePublic(
        id=rule.id,
        account_id=rule.account_id,
        keywords=list(rules.split_keywords(rule.keywords)),
        org_code=org.code,
        org_name=org.name,
        priority=rule.priority,
        active=rule.active,
    )


@router.get("/inbox/routing-rules", response_model=list[RoutingRulePublic])
def list_routing_rules(session: SessionDep, principal: PrincipalDep) -> list[RoutingRulePublic]:
    principal.require(Action.case_read)
    return [_rule_public(r, o) for r, o in service.list_rules(session=session)]


@router.post("/inbox/routing-rules", response_model=RoutingRulePublic, status_code=201)
def create_routing_rule(
    body: RoutingRuleCreate, session: SessionDep, principal: PrincipalDep
) -> RoutingRulePublic:
    """Route new cases by account and keywords (admins of the target org)."""
    org = orgs.get_by_code(session=session, code=body.org_code)
    principal.require(Action.org_manage, org)
    if body.account_id is not None and session.get(Account, body.account_id) is None:
        raise NotFound("账号 %(account_id)s 不存在", account_id=body.account_id)
    rule = RoutingRule(
        account_id=body.account_id,
        keywords=",".join(rules.split_keywords(body.keywords)),
        org_id=org.id,  # type: ignore[arg-type]
        priority=body.priority,
    )
    session.add(rule)
    session.commit()
    return _rule_public(rule, org)


@router.patch("/inbox/routing-rules/{rule_id}", response_model=RoutingRulePublic)
def update_routing_rule(
    rule_id: Id, body: RoutingRuleUpdate, session: SessionDep, principal: PrincipalDep
) -> RoutingRulePublic:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("分办规则 %(rule_id)s 不存在", rule_id=rule_id)
    principal.reach(
        Action.org_manage,
        orgs.get(session=session, org_id=rule.org_id),
        NotFound("分办规则 %(rule_id)s 不存在", rule_id=rule_id),
    )
    if body.org_code is not None:
        org = orgs.get_by_code(session=session, code=body.org_code)
        principal.require(Action.org_manage, org)
        rule.org_id = org.id  # type: ignore[assignment]
    if body.keywords is not None:
        rule.keywords = ",".join(rules.split_keywords(body.keywords))
    if body.priority is not None:
        rule.priority = body.priority
    if body.active is not None:
        rule.active = body.active
    session.add(rule)
    session.commit()
    return _rule_public(rule, orgs.get(session=session, org_id=rule.org_id))


@router.put("/inbox/settings/{org_code}", response_model=InboxSettingBody)
def put_settings(
    org_code: str,
    body: InboxSettingBody,
    session: SessionDep,
    principal: PrincipalDep,
    who: WhoDep,
) -> InboxSettingBody:
    """Whether the org's replies are reviewed before they go out (admins of the org)."""
    org = orgs.get_by_code(session=session, code=org_code)
    principal.require(Action.org_manage, org)
    replies.set_review(session=session, org=org, review_replies=body.review_replies, who=who)
    session.commit()
    return body


@router.get("/inbox/settings/{org_code}", response_model=InboxSettingBody)
def get_settings_of(
    org_code: str, session: SessionDep, principal: PrincipalDep
) -> InboxSettingBody:
    org = orgs.get_by_code(session=session, code=org_code)
    principal.require(Action.case_read, org)
    assert org.id is not None
    return InboxSettingBody(review_replies=replies.review_required(session=session, org_id=org.id))
