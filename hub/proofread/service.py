"""Proofreading: the lexicon in force for an org, checking texts, and maintaining the rows.

The lexicon for an org is the presets' entries (``GOVHUB_POLICY``), then the rows of each org on
its path from the root down (the province's first, the org's own last), plus the leaders of its
province and the names in the org table. It is compiled once and kept until a row, a leader or
an org changes (a cheap fingerprint is compared on every use).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from threading import Lock
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.accounts.models import Account
from hub.auditlog.service import audit
from hub.config import get_settings
from hub.errors import Forbidden, Invalid, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.proofread import rules
from hub.proofread.models import (
    Acknowledgement,
    EntryCreate,
    EntryUpdate,
    Finding,
    FindingCreate,
    LeaderCreate,
    LeaderRow,
    LeaderUpdate,
    LexiconRow,
)
from hub.proofread.presets import preset_entries
from hub.users.rules import Action, may, sees
from hub.users.who import Who

# -- the lexicon in force --------------------------------------------------------------------------

# compiled lexicons, most recently used last (a 50,000-entry lexicon takes ~0.7 s to compile)
_cache: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], rules.Lexicon]] = OrderedDict()
_cache_lock = Lock()
CACHE_SIZE = 64


def _codes(org: Org) -> list[str]:
    return [c for c in org.path.split("/") if c]


def _fingerprint(session: Session, codes: list[str]) -> tuple[Any, ...]:
    rows = session.exec(
        select(func.count(col(LexiconRow.id)), func.max(LexiconRow.updated_at))
        .join(Org, col(Org.id) == col(LexiconRow.org_id))
        .where(col(Org.code).in_(codes))
    ).one()
    leaders = session.exec(
        select(func.count(col(LeaderRow.id)), func.max(LeaderRow.updated_at))
    ).one()
    org_rows = session.exec(select(func.count(col(Org.id)), func.max(Org.updated_at))).one()
    return (tuple(rows), tuple(leaders), tuple(org_rows))


def row_entry(row: LexiconRow, source: str = "") -> rules.Entry:
    return rules.Entry(
        rules.Category(row.category),
        row.term,
        row.correct,
        row.message,
        rules.Severity(row.severity),
        tuple(row.exceptions),
        source or f"#{row.id}",
    )


def lexicon_for(session: Session, org: Org) -> rules.Lexicon:
    codes = _codes(org)
    presets = tuple(get_settings().policies)
    key = (str(session.get_bind().engine.url), presets, org.path)
    stamp = _fingerprint(session, codes)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    by_code = {o.code: o for o in session.exec(select(Org).where(col(Org.code).in_(codes))).all()}
    layers: list[list[tuple[rules.Entry, bool]]] = []
    for code in codes:
        scope = by_code.get(code)
        if scope is None:
            continue
        rows = session.exec(
            select(LexiconRow).where(LexiconRow.org_id == scope.id).order_by(col(LexiconRow.id))
        ).all()
        layers.append([(row_entry(r, f"{scope.name} #{r.id}"), r.enabled) for r in rows])
    entries = rules.merge_entries(preset_entries(presets), layers)
    root = f"/{codes[0]}/" if codes else "/"
    leader_rows = session.exec(
        select(LeaderRow, Org)
        .join(Org, col(Org.id) == col(LeaderRow.org_id))
        .where(col(LeaderRow.active).is_(True), col(Org.path).startswith(root))
    ).all()
    leaders = [rules.Leader(r.name, r.title, r.rank, o.name) for r, o in leader_rows]
    names = session.exec(select(Org.name)).all()
    lexicon = rules.compile_lexicon(entries, leaders, names)
    with _cache_lock:
        _cache[key] = (stamp, lexicon)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return lexicon


def check(session: Session, org: Org, texts: Mapping[str, str]) -> list[rules.Hit]:
    """Hits in each named text (``{"title": ..., "body": ...}``), field by field."""
    lexicon = lexicon_for(session, org)
    hits: list[rules.Hit] = []
    for name, text in texts.items():
        hits += lexicon.check(text, field=name)
    return hits


def refuse_blocking(session: Session, org: Org, texts: Mapping[str, str], what: str) -> None:
    """Raise 422 naming each ``block`` hit (the live console, inbox replies)."""
    message = rules.refusal(check(session, org, texts), what)
    if message:
        raise Invalid(message, field="text")


def hit_public(hit: rules.Hit) -> dict[str, Any]:
    return {
        "category": hit.category.value,
        "category_label": hit.label,
        "severity": hit.severity.value,
        "start": hit.start,
        "end": hit.end,
        "text": hit.text,
        "message": hit.message,
        "suggestion": hit.suggestion,
        "field": hit.field,
        "description": hit.describe(),
    }


# -- acknowledgements of warn hits at approval ----------------------------------------------------


def acknowledge(
    *,
    session: Session,
    hits: Iterable[rules.Hit],
    given: Mapping[str, str],
    post_id: int,
    version: int,
    org_id: int,
    reviewer_id: int,
    now: datetime,
) -> list[Acknowledgement]:
    """Record the reviewer's reason for each ``warn`` hit; 422 naming those without one."""
    hits = list(hits)
    reasons = {text: reason.strip() for text, reason in given.items() if reason.strip()}
    missing = rules.missing_acknowledgements(hits, reasons)
    if missing:
        raise Invalid(
            "校对提示需要审核人逐条确认并说明理由后才能批准：%(hits)s",
            field="acknowledge",
            hits="；".join(h.describe() for h in missing),
        )
    rows = []
    seen: set[str] = set()
    for hit in rules.warnings(hits):
        if hit.text in seen:
            continue
        seen.add(hit.text)
        row = Acknowledgement(
            post_id=post_id,
            version=version,
            org_id=org_id,
            reviewer_id=reviewer_id,
            category=hit.category.value,
            text=hit.text,
            message=hit.message,
            reason=reasons[hit.text],
            at=now,
        )
        session.add(row)
        rows.append(row)
    return rows


# -- maintaining entries and leaders (admins, audited) --------------------------------------------


FIELD_ZH = {
    "correct": "规范写法",
    "message": "说明",
    "severity": "级别",
    "exceptions": "例外",
    "enabled": "启用",
    "name": "姓名",
    "title": "职务",
    "rank": "排序",
    "active": "在任",
    "note": "备注",
}


def _changes(changes: Mapping[str, Any]) -> str:
    def show(value: Any) -> str:
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, list):
            return "|".join(str(v) for v in value)
        return str(value)

    return "，".join(f"{FIELD_ZH.get(k, k)}={show(v)}" for k, v in changes.items()) or "无变化"


def _audit(
    session: Session, who: Who, action: str, kind: str, obj: object, org: Org, summary: str
) -> None:
    audit(session, who, action, kind, obj, org_id=org.id, summary=summary)


def _org_by_code(session: Session, code: str) -> Org | None:
    try:
        return orgs.get_by_code(session=session, code=code)
    except NotFound:
        return None


def _manageable(session: Session, who: Who, code: str) -> Org:
    org = _org_by_code(session, code) if code else None
    if org is None or not sees(who.actor, org.path):
        raise NotFound("机构 %(code)s 不存在", code=code)
    if not may(who.actor, Action.org_manage, org.path):
        raise Forbidden("只有管理员可以维护校对词库和领导人名录")
    return org


def readable_org(session: Session, who: Who, code: str | None) -> Org:
    """The org named (default: the caller's own), 404 outside the caller's reach."""
    org = _org_by_code(session, code) if code else orgs.get(session=session, org_id=who.user.org_id)
    if org is None or not sees(who.actor, org.path):
        raise NotFound("机构 %(code)s 不存在", code=code)
    return org


def _entry(data: EntryCreate | LexiconRow) -> rules.Entry:
    try:
        return rules.make_entry(
            category=data.category,
            term=data.term,
            correct=data.correct,
            message=data.message,
            severity=data.severity,
            exceptions=data.exceptions,
        )
    except rules.LexiconError as exc:
        raise Invalid(str(exc)) from None


def add_entry(*, session: Session, who: Who, data: EntryCreate, now: datetime) -> LexiconRow:
    org = _manageable(session, who, data.org_code)
    entry = _entry(data)
    existing = session.exec(
        select(LexiconRow).where(
            LexiconRow.org_id == org.id,
            LexiconRow.category == entry.category.value,
            LexiconRow.term == entry.term,
        )
    ).first()
    if existing is not None:
        raise Invalid(
            "「%(term)s」已在%(org)s的词库中（#%(existing_id)s），请修改该条",
            term=entry.term,
            org=org.name,
            existing_id=existing.id,
        )
    row = LexiconRow(
        org_id=org.id,  # type: ignore[arg-type]
        category=entry.category.value,
        term=entry.term,
        correct=entry.correct,
        message=entry.message,
        severity=entry.severity.value,
        exceptions=list(entry.exceptions),
        enabled=data.enabled,
        created_by=who.id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    verb = "加入" if data.enabled else "停用"
    _audit(
        session,
        who,
        "proofread.entry_add",
        "proofread_entry",
        row.id,
        org,
        f"{verb}{rules.CATEGORY_LABELS[entry.category]}「{entry.term}」"
        + (f"→「{entry.correct}」" if entry.correct else "")
        + f"（{entry.severity.value}）",
    )
    return row


def update_entry(
    *, session: Session, who: Who, entry_id: int, data: EntryUpdate, now: datetime
) -> LexiconRow:
    row = session.get(LexiconRow, entry_id)
    org = orgs.get(session=session, org_id=row.org_id) if row is not None else None
    if row is None or org is None or not sees(who.actor, org.path):
        raise NotFound("词条 %(entry_id)s 不存在", entry_id=entry_id)
    _manageable(session, who, org.code)
    changes = data.model_dump(exclude_none=True)
    for name, value in changes.items():
        setattr(row, name, value)
    _entry(row)  # still a valid entry
    row.updated_at = now
    session.add(row)
    summary = _changes(changes)
    _audit(
        session,
        who,
        "proofread.entry_update",
        "proofread_entry",
        row.id,
        org,
        f"「{row.term}」：{summary}",
    )
    return row


def entries_of(session: Session, org: Org) -> list[tuple[LexiconRow, Org]]:
    """The rows in force for ``org``: its own and its ancestors'."""
    return list(
        session.exec(
            select(LexiconRow, Org)
            .join(Org, col(Org.id) == col(LexiconRow.org_id))
            .where(col(Org.code).in_(_codes(org)))
            .order_by(col(Org.path), col(LexiconRow.category), col(LexiconRow.term))
        ).all()
    )


def add_leader(*, session: Session, who: Who, data: LeaderCreate, now: datetime) -> LeaderRow:
    org = _manageable(session, who, data.org_code)
    row = LeaderRow(
        org_id=org.id,  # type: ignore[arg-type]
        name=data.name.strip(),
        title=data.title.strip(),
        rank=data.rank,
        note=data.note.strip(),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        who,
        "proofread.leader_add",
        "proofread_leader",
        row.id,
        org,
        f"{row.name}（{row.title}，排序{row.rank}）",
    )
    return row


def update_leader(
    *, session: Session, who: Who, leader_id: int, data: LeaderUpdate, now: datetime
) -> LeaderRow:
    row = session.get(LeaderRow, leader_id)
    org = orgs.get(session=session, org_id=row.org_id) if row is not None else None
    if row is None or org is None or not sees(who.actor, org.path):
        raise NotFound("领导人 %(leader_id)s 不存在", leader_id=leader_id)
    _manageable(session, who, org.code)
    changes = data.model_dump(exclude_none=True)
    for name, value in changes.items():
        setattr(row, name, value.strip() if isinstance(value, str) else value)
    row.updated_at = now
    session.add(row)
    summary = _changes(changes)
    _audit(
        session,
        who,
        "proofread.leader_update",
        "proofread_leader",
        row.id,
        org,
        f"{row.name}：{summary}",
    )
    return row


def leaders_of(session: Session, org: Org) -> list[tuple[LeaderRow, Org]]:
    codes = _codes(org)
    root = f"/{codes[0]}/" if codes else "/"
    return list(
        session.exec(
            select(LeaderRow, Org)
            .join(Org, col(Org.id) == col(LeaderRow.org_id))
            .where(col(Org.path).startswith(root))
            .order_by(col(Org.path), col(LeaderRow.rank), col(LeaderRow.id))
        ).all()
    )


# -- inspectors' findings (item 7) ------------------------------------------------------------------


def record_finding(*, session: Session, who: Who, data: FindingCreate, now: datetime) -> Finding:
    account = session.get(Account, data.account_id)
    org = orgs.get(session=session, org_id=account.org_id) if account is not None else None
    if account is None or org is None or not sees(who.actor, org.path):
        raise NotFound("账号 %(account_id)s 不存在", account_id=data.account_id)
    if not may(who.actor, Action.matrix_audit, org.path):
        raise Forbidden("你的角色不能记录检查发现")
    if not data.link.startswith(("http://", "https://")):
        raise Invalid("链接应为发布内容的网址（http…）", field="link")
    if data.found_on > now.date():
        raise Invalid("发现日期不能晚于今天", field="found_on")
    row = Finding(
        account_id=data.account_id,
        org_id=org.id,  # type: ignore[arg-type]
        link=data.link,
        found_on=data.found_on,
        text=data.text,
        note=data.note,
        recorded_by=who.id,
        at=now,
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        who,
        "proofread.finding",
        "misstatement_finding",
        row.id,
        org,
        f"{account.name} {data.found_on.isoformat()} 严重表述错误：{data.text[:100]}",
    )
    return row


def misstatement_counts(*, session: Session, as_of: date) -> dict[int, int]:
    """Findings per account in the year up to the audit date (an annual inspection's window)."""
    since = (
        as_of.replace(year=as_of.year - 1)
        if not (as_of.month == 2 and as_of.day == 29)
        else as_of.replace(year=as_of.year - 1, day=28)
    )
    rows = session.exec(
        select(Finding.account_id, func.count(col(Finding.id)))
        .where(col(Finding.found_on) <= as_of, col(Finding.found_on) > since)
        .group_by(col(Finding.account_id))
    ).all()
    return {account_id: count for account_id, count in rows}
