"""The reach ranking page (/reach): an org's accounts and sub-orgs ranked by readers' counts
over a chosen period, with bar charts drawn server-side as inline SVG (no scripts)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hub.config import get_settings
from hub.errors import Forbidden, HubError, NotFound
from hub.reach import rules, service
from hub.reach.api import org_in_reach, resolve_period
from hub.web import i18n
from hub.web.deps import Principal, SessionDep
from hub.web.i18n import _, current_locale
from hub.web.pages import page_of, refuse, render, to_login

router = APIRouter(include_in_schema=False)

BAR_HEIGHT = 26
LABEL_WIDTH = 200
BAR_WIDTH = 380
TOP = 20  # bars per chart


def bar_chart(ranked: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of the first ``TOP`` ranked rows with any reach
    (shared scale; the tables list the rest)."""
    shown = [row for row in ranked if row["value"] > 0][:TOP]
    widths = rules.bar_widths([r["value"] for r in shown], BAR_WIDTH)
    bars = [
        {
            "y": index * BAR_HEIGHT,
            "label": f"{row['rank']}. {row['name']}",
            "width": width,
            "text": f"{row['value']:,}",
        }
        for index, (row, width) in enumerate(zip(shown, widths, strict=True))
    ]
    return {
        "title": title,
        "bars": bars,
        "label_width": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "text_y": round(BAR_HEIGHT * 0.65, 1),
        "height": max(1, len(bars)) * BAR_HEIGHT + 8,
        "width": LABEL_WIDTH + BAR_WIDTH + 90,
    }


@router.get("/reach", response_class=HTMLResponse)
def reach_page(
    request: Request,
    session: SessionDep,
    org: str = "",
    since: str = "",
    until: str = "",
    by: str = rules.TOTAL,
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    principal = Principal(user=page.user, actor=page.actor, via_cookie=True)
    code = org.strip() or (page.org.code if page.org else "")
    settings = get_settings()
    error = ""
    try:
        target = org_in_reach(session, principal, code[:40])
    except NotFound:
        return refuse(request, page, 404)
    except Forbidden:
        return refuse(request, page, 403)
    data: dict[str, Any] | None = None
    try:
        start, end = resolve_period(since, until, settings)
        data = service.org_reach(
            session=session, org=target, since=start, until=end, by=by[:40], locale=current_locale()
        )
    except HubError as exc:
        error = i18n.error_text(exc, request)
    labels = {f["key"]: f["label"] for f in data["fields"]} if data else {}
    measure = labels.get(data["by"], _("合计")) if data else ""
    charts = (
        [
            bar_chart(data["orgs"], _("下级机构 · %(measure)s") % {"measure": measure}),
            bar_chart(data["accounts"], _("账号 · %(measure)s") % {"measure": measure}),
        ]
        if data
        else []
    )
    return render(
        request,
        "pages/reach.html",
        page,
        target=target,
        data=data,
        error=error,
        since=since,
        until=until,
        charts=[c for c in charts if c["bars"]],
        total_key=rules.TOTAL,
    )
