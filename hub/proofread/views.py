"""The proofreading page (校对词库): the lexicon in force, the leaders registry, warnings
reviewers let through, inspectors' findings. Admins add and switch off entries and leaders;
supervisors and admins record findings. The page reads and writes through /api/v1/proofread."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hub.proofread.rules import CATEGORY_LABELS, TERM_CATEGORIES
from hub.users.rules import Action
from hub.web.deps import SessionDep
from hub.web.i18n import _
from hub.web.pages import page_of, refuse, render, to_login

router = APIRouter(include_in_schema=False)


@router.get("/proofread", response_class=HTMLResponse)
def proofread_page(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.post_read, page.org):
        return refuse(request, page, 403)
    return render(
        request,
        "pages/proofread.html",
        page,
        categories=[(c.value, _(CATEGORY_LABELS[c])) for c in TERM_CATEGORIES],
        config={
            "orgCode": page.org.code if page.org else "",
            "canManage": page.may(Action.org_manage, page.org),
            "canRecord": page.may(Action.matrix_audit, page.org),
            "labels": {c.value: _(label) for c, label in CATEGORY_LABELS.items()},
        },
    )
