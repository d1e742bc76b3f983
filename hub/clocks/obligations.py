"""Recurring obligations (定期义务): press conferences, releases and reports a policy requires
per period; their periods are created and re-evaluated from the records on file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.auditlog.service import audit
from hub.clocks import rules
from hub.clocks.models import Obligation, ObligationPublic, ObligationRecord, ObligationRecordPublic
from hub.clocks.rules import ObligationState
from hub.clocks.service import policy_in_force
from hub.config import get_settings
from hub.errors import Invalid
from hub.orgs.models import Org
from hub.policies import Policy, RecurringRule
from hub.sqltypes import utcnow
from hub.users.who import Who

# -- recurring obligations ----------------------------------------------------------------------


def spokesperson_terms(*, session: Session) -> dict[int, list[tuple[date, date | None]]]:
    """Per org, the (appointed_on, ended_on) of its spokespersons on file (``hub.audit``)."""
    from hub.audit.models import Spokesperson, SpokespersonRole

    terms: dict[int, list[tuple[date, date | None]]] = defaultdict(list)
    for person in session.exec(
        select(Spokesperson).where(Spokesperson.role == SpokespersonRole.spokesperson)
    ).all():
        terms[person.org_id].append((person.appointed_on, person.ended_on))
    return terms


def _in_office(terms: Iterable[tuple[date, date | None]], window: rules.PeriodWindow) -> bool:
    return any(start <= window.end and (end is None or end >= window.start) for start, end in terms)


def obligation_applies(
    rule: RecurringRule, org: Org, parent: Org | None, *, has_spokesperson: bool
) -> bool:
    """Whether ``rule`` binds ``org``: its scope, and its subject (the org flagged as press
    office; an org with a spokesperson on file during the period; any org)."""
    if not rule.applies_to(
        org.level.value,
        parent_level=parent.level.value if parent else None,
        livelihood=org.livelihood,
        press_office=org.press_office,
    ):
        return False
    if rule.subject == "press_office":
        return org.press_office
    if rule.subject == "spokesperson":
        return has_spokesperson
    return True


@dataclass(frozen=True)
class ObligationRefresh:
    created: int
    changed: int


def refresh_obligations(
    *,
    session: Session,
    policy: Policy,
    today: date,
    tz: ZoneInfo,
    since: date | None = None,
    org_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
) -> ObligationRefresh:
    """Create each binding obligation's periods from ``since`` (default: the current period) to
    ``today`` and re-evaluate every one not yet met (met / open / missed) from the records."""
    orgs = list(session.exec(select(Org)).all())
    by_id: dict[int | None, Org] = {org.id: org for org in orgs}
    terms = spokesperson_terms(session=session)
    if org_ids is not None:
        orgs = [org for org in orgs if org.id in set(org_ids)]
    created = 0
    selected = {k: r for k, r in policy.recurring.items() if kinds is None or k in kinds}
    for kind, rule in selected.items():
        windows = rules.periods_between(rule.period, since or today, today)
        existing = {
            (row.org_id, row.period_start)
            for row in session.exec(select(Obligation).where(Obligation.kind == kind)).all()
        }
        for org in orgs:
            parent = by_id.get(org.parent_id)
            for window in windows:
                if (org.id, window.start) in existing:
                    continue
                has_spokesperson = _in_office(terms.get(org.id, []), window)  # type: ignore[arg-type]
                if not obligation_applies(rule, org, parent, has_spokesperson=has_spokesperson):
                    continue
                session.add(
                    Obligation(
                        kind=kind,
                        org_id=org.id,  # type: ignore[arg-type]
                        period_label=window.label,
                        period_start=window.start,
                        period_end=window.end,
                        due_at=rules.end_of_day(window.end, tz).astimezone(UTC),
                        required=rule.min_count,
                    )
                )
                created += 1
    session.flush()
    query = select(Obligation).where(
        Obligation.status != ObligationState.met, col(Obligation.period_start) <= today
    )
    if org_ids is not None:
        query = query.where(col(Obligation.org_id).in_(list(org_ids)))
    if kinds is not None:
        query = query.where(col(Obligation.kind).in_(list(kinds)))
    pending = session.exec(query).all()
    dates: dict[tuple[str, int], list[date]] = defaultdict(list)
    if pending:
        for entry in session.exec(
            select(ObligationRecord).where(
                col(ObligationRecord.kind).in_({o.kind for o in pending}),
                col(ObligationRecord.org_id).in_({o.org_id for o in pending}),
            )
        ).all():
            dates[(entry.kind, entry.org_id)].append(entry.held_on)
    changed = 0
    for obligation in pending:
        window = rules.PeriodWindow(
            obligation.period_start, obligation.period_end, obligation.period_label
        )
        held = sorted(dates[(obligation.kind, obligation.org_id)])
        status = rules.obligation_status(window, held, min_count=obligation.required, as_of=today)
        if status.state != obligation.status or status.count != obligation.count:
            inside = [d for d in held if window.start <= d <= min(window.end, today)]
            obligation.status, obligation.count = status.state, status.count
            obligation.met_at = (
                inside[obligation.required - 1] if status.state is ObligationState.met else None
            )
            obligation.updated_at = utcnow()
            session.add(obligation)
            changed += 1
    session.flush()
    return ObligationRefresh(created, changed)


def add_obligation_record(
    *,
    session: Session,
    kind: str,
    org: Org,
    held_on: date,
    title: str,
    url: str = "",
    who: Who,
    today: date,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
) -> ObligationRecord:
    """Record a press conference / release / report and re-evaluate the obligation it meets."""
    policy = policy or policy_in_force()
    rule = policy.recurring.get(kind)
    if rule is None:
        raise Invalid(
            "未知的义务类型 %(kind)r；规则 %(policy)s 定义的有：%(kinds)s",
            field="kind",
            kind=kind,
            policy=policy.name,
            kinds=", ".join(sorted(policy.recurring)) or "none",
        )
    if held_on > today:
        raise Invalid("举行日期（held_on）不能晚于今天", field="held_on")
    parent = session.get(Org, org.parent_id) if org.parent_id else None
    window = rules.period_containing(rule.period, held_on)
    has_spokesperson = _in_office(spokesperson_terms(session=session).get(org.id, []), window)  # type: ignore[arg-type]
    if not obligation_applies(rule, org, parent, has_spokesperson=has_spokesperson):
        raise Invalid(
            "按规则，%(org)s没有%(kind)s义务",
            field="kind",
            org=org.name,
            kind=kind,
        )
    entry = ObligationRecord(
        kind=kind,
        org_id=org.id,  # type: ignore[arg-type]
        held_on=held_on,
        title=title.strip()[:300],
        url=url.strip(),
        created_by=who.user_id,
    )
    session.add(entry)
    session.flush()
    audit(
        session,
        who,
        "obligation.record",
        "obligation_record",
        entry.id,
        org_id=org.id,
        summary=f"{kind} {held_on.isoformat()} {entry.title}",
    )
    refresh_obligations(
        session=session,
        policy=policy,
        today=today,
        tz=tz or get_settings().tz,
        since=held_on,
        org_ids=[org.id],  # type: ignore[list-item]
        kinds=[kind],
    )
    return entry


def list_obligations(
    *,
    session: Session,
    scope_path: str | None = None,
    org_path: str | None = None,
    status: ObligationState | None = None,
    kind: str | None = None,
    period: str | None = None,
) -> list[tuple[Obligation, Org]]:
    query = select(Obligation, Org).join(Org, col(Obligation.org_id) == col(Org.id))
    for path in (scope_path, org_path):
        if path:
            query = query.where(col(Org.path).startswith(path))
    if status is not None:
        query = query.where(Obligation.status == status)
    if kind:
        query = query.where(Obligation.kind == kind)
    if period:
        query = query.where(Obligation.period_label == period)
    rows = session.exec(
        query.order_by(col(Obligation.period_start).desc(), col(Org.path), col(Obligation.kind))
    ).all()
    return [(obligation, org) for obligation, org in rows]


def obligation_public(
    obligation: Obligation, org: Org, policy: Policy, tz: ZoneInfo
) -> ObligationPublic:
    rule = policy.recurring.get(obligation.kind)
    return ObligationPublic(
        id=obligation.id,
        kind=obligation.kind,
        kind_title=(rule.title_zh or rule.title_en) if rule else obligation.kind,
        org_code=org.code,
        org_name=org.name,
        period=obligation.period_label,
        period_start=obligation.period_start,
        period_end=obligation.period_end,
        due_at=obligation.due_at.astimezone(tz),
        required=obligation.required,
        count=obligation.count,
        status=obligation.status,
        met_at=obligation.met_at,
    )


def record_public(entry: ObligationRecord, org: Org) -> ObligationRecordPublic:
    return ObligationRecordPublic(
        id=entry.id,
        kind=entry.kind,
        org_code=org.code,
        held_on=entry.held_on,
        title=entry.title,
        url=entry.url,
    )
