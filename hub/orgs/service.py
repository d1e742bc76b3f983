"""Loading, importing and listing organisations."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from hub.errors import Invalid, NotFound
from hub.orgs.models import Org, OrgLevel, OrgName, OrgPublic
from hub.sqltypes import utcnow

REQUIRED_COLUMNS = ("code", "name", "level", "parent_code")
TRUE_WORDS = {"1", "true", "yes", "是"}
FALSE_WORDS = {"0", "false", "no", "否", ""}


@dataclass(frozen=True)
class OrgRow:
    code: str
    name: str
    level: OrgLevel
    parent_code: str | None
    livelihood: bool = False
    press_office: bool = False
    wechat_comments: str | None = None  # closed | open | fans; None: leave as it is


WECHAT_COMMENTS = ("closed", "open", "fans")


@dataclass
class ImportReport:
    created: int = 0
    renamed: int = 0
    updated: int = 0
    unchanged: int = 0


def decode_csv(data: bytes) -> str:
    """A CSV file's text: UTF-8 (with or without a BOM) or GB18030 (which covers GBK/GB2312, as
    spreadsheet programs on Chinese Windows save it)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Invalid("CSV 文件既不是 UTF-8 也不是 GB18030（GBK）编码，请另存为 UTF-8")


def parse_flag(value: str | None, *, column: str, line_no: int) -> bool:
    """yes/no, true/false, 1/0, 是/否 (empty: no); anything else is refused, never guessed."""
    word = (value or "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Invalid(
        "第%(line_no)s行：%(column)s 须为 yes/no、true/false、1/0 或 是/否，而不是 %(value)r",
        line_no=line_no,
        column=column,
        value=value.strip(),  # type: ignore[union-attr]
    )


def parse_csv(text: str) -> list[OrgRow]:
    """Rows of a divisions CSV
    (``code,name,level,parent_code[,livelihood][,press_office][,wechat_comments]``)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid("CSV 缺少以下列：%(columns)s", columns=", ".join(missing))
    rows: list[OrgRow] = []
    seen: set[str] = set()
    for line_no, raw in enumerate(reader, start=2):
        code = (raw.get("code") or "").strip()
        name = (raw.get("name") or "").strip()
        level_text = (raw.get("level") or "").strip()
        if not code or not name:
            raise Invalid("第%(line_no)s行：代码和名称不能为空", line_no=line_no)
        if code in seen:
            raise Invalid("第%(line_no)s行：代码 %(code)s 重复出现", line_no=line_no, code=code)
        seen.add(code)
        try:
            level = OrgLevel(level_text)
        except ValueError:
            allowed = ", ".join(level.value for level in OrgLevel)
            raise Invalid(
                "第%(line_no)s行：未知的级别 %(level_text)r（可用：%(allowed)s）",
                line_no=line_no,
                level_text=level_text,
                allowed=allowed,
            ) from None
        comments = (raw.get("wechat_comments") or "").strip().lower() or None
        if comments is not None and comments not in WECHAT_COMMENTS:
            raise Invalid(
                "第%(line_no)s行：wechat_comments 须为 %(choices)s 之一",
                line_no=line_no,
                choices=", ".join(WECHAT_COMMENTS),
            )
        rows.append(
            OrgRow(
                code=code,
                name=name,
                level=level,
                parent_code=(raw.get("parent_code") or "").strip() or None,
                livelihood=parse_flag(raw.get("livelihood"), column="livelihood", line_no=line_no),
                press_office=parse_flag(
                    raw.get("press_office"), column="press_office", line_no=line_no
                ),
                wechat_comments=comments,
            )
        )
    return rows


def import_rows(*, session: Session, rows: Iterable[OrgRow], today: date) -> ImportReport:
    """Create or update orgs by code. Renames keep the old name in ``org_names``; ids never change.

    Rows may come in any order: parents are resolved against the file and the database.
    """
    rows = list(rows)
    existing = {org.code: org for org in session.exec(select(Org)).all()}
    by_code = {row.code: row for row in rows}
    for row in rows:
        if row.parent_code and row.parent_code not in by_code and row.parent_code not in existing:
            raise Invalid(
                "机构 %(code)s：上级机构 %(parent_code)s 既不在文件中，也不在系统中",
                code=row.code,
                parent_code=row.parent_code,
            )

    report = ImportReport()
    done: dict[str, Org] = {}

    def ensure(code: str, trail: tuple[str, ...] = ()) -> Org:
        if code in done:
            return done[code]
        if code in trail:
            raise Invalid("机构 %(code)s：上级关系形成了循环", code=code)
        row = by_code.get(code)
        if row is None:
            return existing[code]
        parent = ensure(row.parent_code, (*trail, code)) if row.parent_code else None
        path = f"{parent.path if parent else '/'}{row.code}/"
        org = existing.get(code)
        if org is None:
            org = Org(
                code=row.code,
                name=row.name,
                level=row.level,
                parent_id=parent.id if parent else None,
                path=path,
                livelihood=row.livelihood,
                press_office=row.press_office,
                wechat_comments=row.wechat_comments or "closed",
            )
            session.add(org)
            session.flush()
            session.add(OrgName(org_id=org.id, name=row.name, valid_from=today))  # type: ignore[arg-type]
            report.created += 1
        else:
            renamed = org.name != row.name
            if renamed:
                _rename(session=session, org=org, new_name=row.name, today=today)
            changed = False
            for attr, value in (
                ("level", row.level),
                ("parent_id", parent.id if parent else None),
                ("path", path),
                ("livelihood", row.livelihood),
                ("press_office", row.press_office),
                ("wechat_comments", row.wechat_comments or org.wechat_comments),
            ):
                if getattr(org, attr) != value:
                    setattr(org, attr, value)
                    changed = True
            if renamed or changed:
                org.updated_at = utcnow()
                session.add(org)
            if renamed:
                report.renamed += 1
            elif changed:
                report.updated += 1
            else:
                report.unchanged += 1
        done[code] = org
        return org

    for row in rows:
        ensure(row.code)
    session.flush()
    _repath_descendants(session=session)
    return report


def _rename(*, session: Session, org: Org, new_name: str, today: date) -> None:
    current = session.exec(
        select(OrgName).where(OrgName.org_id == org.id, col(OrgName.valid_to).is_(None))
    ).first()
    if current is not None:
        current.valid_to = today
        session.add(current)
    session.add(OrgName(org_id=org.id, name=new_name, valid_from=today))  # type: ignore[arg-type]
    org.name = new_name


def rename(*, session: Session, org: Org, new_name: str, today: date) -> None:
    if not new_name.strip():
        raise Invalid("新名称不能为空")
    _rename(session=session, org=org, new_name=new_name.strip(), today=today)
    org.updated_at = utcnow()
    session.add(org)


def _repath_descendants(*, session: Session) -> None:
    """Recompute paths top-down (an org moved by an import drags its subtree with it)."""
    orgs = list(session.exec(select(Org)).all())
    by_id = {org.id: org for org in orgs}

    def path_of(org: Org) -> str:
        parent = by_id.get(org.parent_id) if org.parent_id else None
        return f"{path_of(parent) if parent else '/'}{org.code}/"

    for org in orgs:
        new_path = path_of(org)
        if org.path != new_path:
            org.path = new_path
            session.add(org)


def get_by_code(*, session: Session, code: str) -> Org:
    org = session.exec(select(Org).where(Org.code == code)).first()
    if org is None:
        raise NotFound("没有代码为 %(code)r 的机构", field="org_code", code=code)
    return org


def get(*, session: Session, org_id: int) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound("机构 %(org_id)s 不存在", org_id=org_id)
    return org


def list_orgs(
    *,
    session: Session,
    level: OrgLevel | None = None,
    parent_code: str | None = None,
    under_code: str | None = None,
    livelihood: bool | None = None,
    q: str | None = None,
) -> list[Org]:
    query = select(Org)
    if level is not None:
        query = query.where(Org.level == level)
    if parent_code is not None:
        parent = get_by_code(session=session, code=parent_code)
        query = query.where(Org.parent_id == parent.id)
    if under_code is not None:
        ancestor = get_by_code(session=session, code=under_code)
        query = query.where(col(Org.path).startswith(ancestor.path), Org.id != ancestor.id)
    if livelihood is not None:
        query = query.where(Org.livelihood == livelihood)
    if q:
        query = query.where(
            col(Org.name).contains(q, autoescape=True)
            | col(Org.code).startswith(q, autoescape=True)
        )
    return list(session.exec(query.order_by(col(Org.path))).all())


def to_public(*, session: Session, orgs: list[Org]) -> list[OrgPublic]:
    ids = {org.parent_id for org in orgs if org.parent_id}
    parents = {o.id: o.code for o in session.exec(select(Org).where(col(Org.id).in_(ids))).all()}
    org_ids = [org.id for org in orgs]
    former: dict[int, list[str]] = {}
    for name in session.exec(
        select(OrgName).where(col(OrgName.org_id).in_(org_ids), col(OrgName.valid_to).is_not(None))
    ).all():
        former.setdefault(name.org_id, []).append(name.name)
    return [
        OrgPublic(
            id=org.id,
            code=org.code,
            name=org.name,
            level=org.level,
            parent_code=parents.get(org.parent_id) if org.parent_id else None,
            livelihood=org.livelihood,
            press_office=org.press_office,
            wechat_comments=org.wechat_comments,
            default_cover=org.default_cover,
            former_names=former.get(org.id, []),  # type: ignore[arg-type]
        )
        for org in orgs
    ]


def resolve_code(*, session: Session, code: str) -> Org:
    """Like :func:`get_by_code`, for a code given in a request body: unknown is a 422."""
    try:
        return get_by_code(session=session, code=code)
    except NotFound as exc:
        raise Invalid(exc.template, field="org_code", **exc.params) from exc
