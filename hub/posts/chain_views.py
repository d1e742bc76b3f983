"""The administrator's review-chain page (审核流程设置): one org's levels and fast path, as a
plain form (no script); it saves through the same service as ``PUT .../review-chain``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from hub.auditlog.service import record
from hub.errors import HubError, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts import chains
from hub.posts.models import EmergencyPath, ReviewChainIn, ReviewLevelIn
from hub.sqltypes import utcnow
from hub.users.models import User
from hub.users.rules import Access, Action, access
from hub.web import i18n
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import Page, page_of, refuse, render, to_login
from hub.web.views import check_csrf

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form()]


def _org(request: Request, session: Session, code: str) -> tuple[Page, Org] | Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    try:
        org = orgs.get_by_code(session=session, code=code or "")
    except NotFound:
        org = orgs.get(session=session, org_id=page.user.org_id)
    verdict = access(page.actor, Action.org_manage, org.path)
    if verdict is not Access.allowed:
        return refuse(request, page, 404 if verdict is Access.hidden else 403)
    return page, org


@router.get("/admin/review-chain", response_class=HTMLResponse)
def chain_page(request: Request, session: SessionDep, org: str = "") -> Response:
    found = _org(request, session, org)
    if isinstance(found, Response):
        return found
    page, chosen = found
    chain = chains.to_public(session, chosen, chains.chain_of(session, chosen.id or 0))
    return render(
        request,
        "pages/review_chain.html",
        page,
        org=chosen,
        chain=chain,
        rows=[*chain.levels, *([None] * (3 - len(chain.levels)))] if chain.configured else [],
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
    )


def _ids(raw: str) -> list[int]:
    parts = raw.replace("，", ",").replace(" ", ",").split(",")
    return [int(p) for p in parts if p.strip().isdigit()]


@router.post("/admin/review-chain")
def save_chain(
    request: Request,
    session: SessionDep,
    org: Text = "",
    csrf: Text = "",
    emergency: Text = "last",
    name1: Text = "",
    role1: Text = "",
    users1: Text = "",
    name2: Text = "",
    role2: Text = "",
    users2: Text = "",
    name3: Text = "",
    role3: Text = "",
    users3: Text = "",
    remove: Text = "",
) -> Response:
    found = _org(request, session, org)
    if isinstance(found, Response):
        return found
    page, chosen = found
    check_csrf(request, csrf)
    back = RedirectResponse(f"/admin/review-chain?org={chosen.code}", status_code=303)
    if remove == "1":
        if chains.remove(session=session, org=chosen):
            _audit(request, session, page.user, chosen, "review_chain.remove", "恢复一级审核")
            session.commit()
        request.session["notice"] = _("%(org)s已恢复一级审核。") % {"org": chosen.name}
        return back
    levels = []
    for name, role, users in (
        (name1, role1, users1),
        (name2, role2, users2),
        (name3, role3, users3),
    ):
        if not name.strip():
            continue
        levels.append(
            ReviewLevelIn(
                name=name.strip()[:20],
                role=None if users.strip() else ("admin" if role == "admin" else "reviewer"),
                user_ids=_ids(users),
            )
        )
    try:
        data = ReviewChainIn(
            levels=levels,
            emergency=EmergencyPath(emergency)
            if emergency in {e.value for e in EmergencyPath}
            else EmergencyPath.last,
        )
        chain = chains.save(session=session, org=chosen, data=data, by=page.user, now=utcnow())
    except ValidationError:
        request.session["error"] = _("审核链须有 1 至 3 级，每级要有名称")
        return back
    except HubError as exc:
        request.session["error"] = i18n.error_text(exc, request)
        return back
    summary = " → ".join(str(lv["name"]) for lv in chain.levels)
    _audit(request, session, page.user, chosen, "review_chain.set", summary)
    session.commit()
    request.session["notice"] = _("已保存%(org)s的审核流程：%(levels)s。") % {
        "org": chosen.name,
        "levels": summary,
    }
    return back


def _audit(
    request: Request, session: Session, user: User, org: Org, action: str, summary: str
) -> None:
    record(
        session=session,
        actor_id=user.id,
        actor_name=user.username,
        action=action,
        object_type="org",
        object_id=org.id,
        org_id=org.id,
        summary=summary,
        client_ip=client_ip(request),
    )
