"""Pages for accounts (账号) and the audit log (操作日志)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from annotated_types import Le
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from hub.accounts import service as accounts
from hub.accounts.models import Account, Platform
from hub.accounts.service import credential_fields
from hub.auditlog import service as auditlog
from hub.auditlog.words import action_label, readable_summary
from hub.config import get_settings
from hub.orgs.models import Org
from hub.platforms import info as platform_info
from hub.sqltypes import utcnow
from hub.users.rules import Action, scope_path
from hub.web.dashboard import EXPIRY_WARNING
from hub.web.deps import SessionDep
from hub.web.i18n import _
from hub.web.pages import page_of, query_day, refuse, render, to_login

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request, session: SessionDep, platform: str = "", org: str = ""
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.account_read):
        return refuse(request, page, 403)
    chosen = Platform(platform) if platform in Platform.all() else None
    rows = accounts.list_accounts(
        session=session,
        scope_path=scope_path(page.actor, Action.account_read),
        platform=chosen,
    )
    if org:
        rows = [(a, o) for a, o in rows if o.code == org or f"/{org}/" in o.path]
    grouped: dict[str, tuple[Org, list[Account]]] = {}
    for account, account_org in rows:
        grouped.setdefault(account_org.code, (account_org, []))[1].append(account)
    now = utcnow()
    return render(
        request,
        "pages/accounts.html",
        page,
        groups=list(grouped.values()),
        now=now,
        soon=now + EXPIRY_WARNING,
        platform=platform,
        org_filter=org,
        platforms=[p.value for p in Platform.all()],
        fields={p.value: credential_fields(p) for p in Platform.all()},
        can_manage={o.code: page.may(Action.account_manage, o) for o, _list in grouped.values()},
        can_bind={o.code: page.may(Action.account_bind, o) for o, _list in grouped.values()},
        can_add=page.may(Action.account_manage),
        new_fields={
            p.value: [
                {
                    "name": f.name,
                    "label": f.label or f.name,
                    "secret": f.secret,
                    "required": f.required,
                }
                for f in platform_info(p).credentials
            ]
            for p in Platform.all()
        },
        add_orgs=session.exec(
            select(Org)
            .where(col(Org.path).startswith(scope_path(page.actor, Action.account_manage)))
            .order_by(col(Org.path))
            .limit(1000)
        ).all()
        if page.may(Action.account_manage)
        else [],
    )


@router.get("/audit-log", response_class=HTMLResponse)
def audit_log_page(
    request: Request,
    session: SessionDep,
    action: str = "",
    actor: str = "",
    since: str = "",
    until: str = "",
    page_no: Annotated[int, Le(1_000_000)] = 1,
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.audit_log_read):
        return refuse(request, page, 403, _("操作日志仅对管理员和督查人员开放。"))
    tz = get_settings().tz
    since_day, until_day = query_day(since), query_day(until)
    page_no = max(page_no, 1)
    rows, total = auditlog.search(
        session=session,
        scope_path=scope_path(page.actor, Action.audit_log_read),
        action=action.strip() or None,
        actor=actor.strip() or None,
        since=datetime.combine(since_day, time(), tz) if since_day else None,
        until=datetime.combine(until_day + timedelta(days=1), time(), tz) if until_day else None,
        limit=AUDIT_PAGE_SIZE,
        offset=(page_no - 1) * AUDIT_PAGE_SIZE,
    )
    pages = max((total + AUDIT_PAGE_SIZE - 1) // AUDIT_PAGE_SIZE, 1)
    filters = {"action": action, "actor": actor, "since": since, "until": until}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "pages/audit_log.html",
        page,
        rows=[(e, action_label(e.action), readable_summary(e.summary, tz)) for e in rows],
        total=total,
        page_no=page_no,
        pages=pages,
        filters=filters,
        query=query,
        bad_dates=(since and since_day is None) or (until and until_day is None),
    )
