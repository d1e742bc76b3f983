"""The supervisor's audit pages: /audit (coverage chart, org x platform grid, trend) and
/audit/orgs/{code} (an org's accounts and their latest activity). Server-rendered, no scripts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from hub.audit import service
from hub.audit.export import STATE_ZH, VERDICT_ZH, Grid, org_verdict_word
from hub.audit.rules import PLATFORM_EN, PLATFORM_ZH, Rollup
from hub.auditlog.service import record
from hub.config import Settings
from hub.errors import HubError
from hub.orgs.models import Org
from hub.sqltypes import utcnow
from hub.users.rules import Action, may
from hub.users.service import actor_of
from hub.web import i18n
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.i18n import _
from hub.web.templating import get_templates
from hub.web.views import check_csrf, csrf_token, page_user

router = APIRouter(include_in_schema=False)
K = TypeVar("K")

BAR_HEIGHT = 26
CHART_LABEL_WIDTH = 190
CHART_BAR_WIDTH = 420


def coverage_chart(rollups: list[Rollup]) -> dict[str, Any]:
    """Geometry of the horizontal bar chart (coverage % per prefecture), drawn as inline SVG."""
    bars = []
    for index, rollup in enumerate(rollups):
        pct = rollup.coverage_pct
        width = round(CHART_BAR_WIDTH * (pct or 0) / 100, 1)
        bars.append(
            {
                "y": index * BAR_HEIGHT,
                "label": rollup.name,
                "code": rollup.code,
                "pct": pct,
                "width": width,
                "tone": "good" if (pct or 0) >= 100 else "warn" if (pct or 0) >= 80 else "bad",
                "text": "—" if pct is None else f"{pct:g}%",
                "detail": f"{rollup.covered}/{rollup.required}",
            }
        )
    return {
        "bars": bars,
        "label_width": CHART_LABEL_WIDTH,
        "bar_width": CHART_BAR_WIDTH,
        "bar_height": BAR_HEIGHT,
        "height": max(1, len(bars)) * BAR_HEIGHT + 24,
        "width": CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 110,
        "ticks": [0, 25, 50, 75, 100],
    }


def english() -> bool:
    """Whether the page speaks English: findings then show their ``text_en``."""
    return i18n.current_locale().startswith("en")


def translated(words: Mapping[K, str]) -> dict[K, str]:
    """The page's words (STATE_ZH, VERDICT_ZH, FINDING_ZH) in its language; exports stay Chinese."""
    return {key: _(word) for key, word in words.items()}


def platform_names() -> Mapping[str, str]:
    return PLATFORM_EN if english() else PLATFORM_ZH


def _guard(request: Request, session: SessionDep) -> tuple[Any, Org | None] | Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    request.scope["govhub_user_locale"] = user.locale  # the page's language (hub/web/i18n)
    i18n.use_locale(i18n.locale_of(request, user.locale))
    org = session.get(Org, user.org_id)
    actor = actor_of(session=session, user=user)
    roots = session.exec(select(Org).where(col(Org.parent_id).is_(None))).all()
    if not all(may(actor, Action.matrix_audit, root.path) for root in roots):
        return get_templates().TemplateResponse(
            request,
            "pages/audit_denied.html",
            {"user": user, "org": org, "csrf": csrf_token(request)},
            status_code=403,
        )
    return user, org


def _audit_or_error(
    session: SessionDep, settings: Settings, as_of: str | None, policy: str | None
) -> tuple[service.MatrixAudit | None, tuple[str, ...], str]:
    now = utcnow()
    try:
        day = service.parse_as_of(as_of, today=now.astimezone(settings.tz).date())
        chosen = service.resolve_policy(policy, settings)
    except HubError as exc:
        return None, (), i18n.error_text(exc)
    audit = service.run_audit(
        session=session,
        policy=chosen,
        as_of=day,
        tz=settings.tz,
        now=now,
        reach_days=settings.reach_days,
    )
    return audit, tuple(chosen.audit.platforms), ""


def policy_choices(settings: Settings) -> list[tuple[str, str]]:
    """The policy select: the configured default, each preset alone, and all of them together
    (national ones first, so local rules win)."""
    from hub.policies import PolicyError, available_presets, load_policy

    names = sorted(available_presets(), key=lambda n: (not n.startswith("national"), n))
    choices = [("", _("默认（%(names)s）") % {"names": ",".join(settings.policies)})]
    for name in names:
        try:
            preset = load_policy([name]).presets[0]
            title = (english() and preset.title_en) or preset.title_zh
        except PolicyError:  # a broken preset file is reported when it is chosen
            title = ""
        choices.append((name, f"{name}：{title[:40]}" if title else name))
    if len(names) > 1:
        choices.append((",".join(names), "、".join(names) + _("（合并，后者优先）")))
    return choices


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    as_of: str | None = None,
    policy: str | None = None,
) -> Response:
    guard = _guard(request, session)
    if isinstance(guard, Response):
        return guard
    user, org = guard
    audit, platforms, error = _audit_or_error(session, settings, as_of, policy)
    context: dict[str, Any] = {
        "user": user,
        "org": org,
        "csrf": csrf_token(request),
        "error": error,
        "as_of": as_of or "",
        "policy": policy or "",
        "policy_choices": policy_choices(settings),
        "saved": request.query_params.get("saved", ""),
    }
    if audit is not None:
        grid = Grid(audit, platforms)
        result = audit.result
        groups = [(r, grid.members(r.code)) for r in result.prefectures]
        provincial = grid.members(result.province.code)
        if provincial:
            groups.append((result.province, provincial))
        context.update(
            result=result,
            chart=coverage_chart(list(result.prefectures)),
            platforms=[(p, platform_names().get(p, p)) for p in platforms],
            groups=[
                (rollup, [(o, grid.cells(o), org_verdict_word(o)) for o in members])
                for rollup, members in groups
            ],
            province_group=result.province.code,
            state_zh=translated(STATE_ZH),
            verdict_zh=translated(VERDICT_ZH),
            finding_zh=translated(service.FINDING_ZH),
            english=english(),
            summary=service.summary_of(result),
            trend=service.latest_trend(session=session),
            saved_runs=len(service.list_runs(session=session)),
            no_account={o.code for o in result.orgs if not grid.by_org.get(o.code)},
            query=f"as_of={result.as_of.isoformat()}" + (f"&policy={policy}" if policy else ""),
        )
    return get_templates().TemplateResponse(
        request, "pages/audit.html", context, status_code=422 if error else 200
    )


@router.post("/audit/runs")
def save_run(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form()] = "",
    as_of: Annotated[str, Form()] = "",
    policy: Annotated[str, Form()] = "",
) -> Response:
    """保存本次检查: what ``POST /api/v1/audits/runs`` does, from the page's button; the trend
    section compares the two latest saved checks."""
    guard = _guard(request, session)
    if isinstance(guard, Response):
        return guard
    user, _org = guard
    check_csrf(request, csrf)
    audit, _platforms, _error = _audit_or_error(session, settings, as_of or None, policy or None)
    if audit is None:
        return RedirectResponse("/audit", status_code=303)
    run = service.save_run(session=session, audit=audit, created_by=user.username, note="")
    province = audit.result.province
    record(
        session=session,
        actor_id=user.id,
        actor_name=user.username,
        action="matrix_audit.save",
        object_type="audit_run",
        object_id=run.id,
        summary=(
            f"截至{audit.result.as_of.isoformat()}的矩阵检查：覆盖率{province.coverage_pct}%，"
            f"问题{len(audit.result.findings)}项"
        ),
        client_ip=client_ip(request),
    )
    session.commit()
    query = f"as_of={audit.result.as_of.isoformat()}" + (f"&policy={policy}" if policy else "")
    return RedirectResponse(f"/audit?{query}&saved={run.id}#trend", status_code=303)


@router.get("/audit/orgs/{code}", response_class=HTMLResponse)
def audit_org_page(
    code: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    as_of: str | None = None,
    policy: str | None = None,
) -> Response:
    guard = _guard(request, session)
    if isinstance(guard, Response):
        return guard
    user, org = guard
    audit, platforms, error = _audit_or_error(session, settings, as_of, policy)
    context: dict[str, Any] = {"user": user, "org": org, "csrf": csrf_token(request)}
    if audit is None:
        context["error"] = error
        return get_templates().TemplateResponse(
            request, "pages/audit_org.html", context, status_code=422
        )
    try:
        verdict = audit.result.org(code)
    except KeyError:
        context["error"] = _("没有代码为 %(code)s 的机构") % {"code": code}
        return get_templates().TemplateResponse(
            request, "pages/audit_org.html", context, status_code=404
        )
    accounts = [a for a in audit.result.accounts if a.org_code == code]
    activity = service.recent_activity(
        session=session, account_ids=[a.account_id for a in accounts]
    )
    context.update(
        no_account=not accounts,
        target=verdict,
        verdict=org_verdict_word(verdict),
        verdict_zh=translated(VERDICT_ZH),
        english=english(),
        result=audit.result,
        accounts=[(a, audit.accounts[a.account_id], activity[a.account_id]) for a in accounts],
        own_findings=[f for f in verdict.findings if f.account_id is None],
        platform_zh=platform_names(),
        finding_zh=translated(service.FINDING_ZH),
        query=f"as_of={audit.result.as_of.isoformat()}" + (f"&policy={policy}" if policy else ""),
        platforms=platforms,
        reach=audit.reach,
        reach_fields=audit.reach_fields,
        reach_since=audit.reach_since,
    )
    return get_templates().TemplateResponse(request, "pages/audit_org.html", context)
