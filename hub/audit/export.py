"""Audit outputs for offices: the org x platform grid, XLSX (printable) and CSV (Excel-ready)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from hub.audit.rules import N_, PLATFORM_ZH, AccountVerdict, Finding, OrgVerdict, Rollup
from hub.audit.service import FINDING_ZH, LEVEL_ZH, MatrixAudit
from hub.policies import FindingCode

CellState = Literal["pass", "fail", "missing", "none"]
STATE_ZH: dict[str, str] = {
    "pass": N_("合格"),
    "fail": N_("不合格"),
    "missing": N_("未开通"),
    "none": "—",
}
VERDICT_ZH = {"pass": N_("合格"), "fail": N_("不合格"), "not_audited": N_("不参检")}
PROVINCE_SHEET = "省本级及省直部门"


@dataclass(frozen=True)
class Cell:
    """One org x platform square of the grid."""

    state: CellState
    text: str
    account_ids: tuple[int, ...] = ()
    text_en: str = ""  # the findings in English, where the page shows English


def finding_text(finding: Finding) -> str:
    """A finding as the 问题 cell reads it: prefixed with its platform (微博：开通…天未更新),
    unless the text names it already (未开通微博)."""
    labels = [PLATFORM_ZH.get(p, p) for p in (finding.platform or "").split("|") if p]
    if not labels or any(label in finding.text_zh for label in labels):
        return finding.text_zh
    return f"{'或'.join(labels)}：{finding.text_zh}"


def org_verdict_word(verdict: OrgVerdict) -> str:
    if not verdict.audited:
        return "not_audited"
    return "pass" if verdict.passed else "fail"


class Grid:
    """Org x platform states of an audit, computed once (page, XLSX)."""

    def __init__(self, audit: MatrixAudit, platforms: tuple[str, ...]) -> None:
        self.audit = audit
        self.platforms = platforms
        self.by_org: dict[str, list[AccountVerdict]] = defaultdict(list)
        for verdict in audit.result.accounts:
            self.by_org[verdict.org_code].append(verdict)

    def cells(self, org: OrgVerdict) -> dict[str, Cell]:
        cells: dict[str, Cell] = {}
        for platform in self.platforms:
            mine = [a for a in self.by_org.get(org.code, []) if a.platform == platform]
            if mine:
                texts = [t.text_zh for a in mine for t in a.findings]
                state: CellState = "pass" if all(a.passed for a in mine) else "fail"
                cells[platform] = Cell(
                    state,
                    "；".join(texts) or STATE_ZH[state],
                    tuple(a.account_id for a in mine),
                    "; ".join(t.text_en or t.text_zh for a in mine for t in a.findings),
                )
                continue
            missing = any(
                platform in r.platforms and not r.covered for r in org.requirements
            ) and any(
                f.code is FindingCode.missing and platform in (f.platform or "").split("|")
                for f in org.findings
            )
            cells[platform] = Cell("missing", "未开通") if missing else Cell("none", "—")
        return cells

    def members(self, group_code: str) -> list[OrgVerdict]:
        return [o for o in self.audit.result.orgs if o.group_code == group_code and o.audited]


# --- XLSX ------------------------------------------------------------------------------------

HEADER_FILL = PatternFill("solid", fgColor="B71C1C")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14)
FILLS = {
    "pass": PatternFill("solid", fgColor="E6F4EA"),
    "fail": PatternFill("solid", fgColor="FDECEA"),
    "missing": PatternFill("solid", fgColor="FFF4E5"),
}
THIN = Side(style="thin", color="C9CED6")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")

ROLLUP_HEADERS = (
    ("地区", 22),
    ("代码", 10),
    ("应开通（个）", 12),
    ("已开通（个）", 12),
    ("覆盖率（%）", 11),
    ("参检机构", 10),
    ("合格机构", 10),
    ("机构合格率（%）", 14),
    ("账号数", 9),
    ("合格账号", 10),
    ("账号合格率（%）", 14),
)


def _rollup_row(label: str, rollup: Rollup) -> list[object]:
    return [
        label,
        rollup.code,
        rollup.required,
        rollup.covered,
        rollup.coverage_pct,
        rollup.orgs_audited,
        rollup.orgs_passed,
        rollup.org_pass_pct,
        rollup.accounts,
        rollup.accounts_passed,
        rollup.account_pass_pct,
    ]


def _sheet_setup(sheet: Worksheet, title: str, headers: tuple[tuple[str, int], ...]) -> None:
    sheet["A1"] = title
    sheet["A1"].font = TITLE_FONT
    for index, (label, width) in enumerate(headers, start=1):
        cell = sheet.cell(row=3, column=index, value=label)
        cell.fill, cell.font, cell.border = HEADER_FILL, HEADER_FONT, BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A4"
    sheet.print_title_rows = "1:3"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True


def _add_row(sheet: Worksheet, values: list[object], fills: dict[int, PatternFill]) -> None:
    sheet.append(values)
    row = sheet.max_row
    for index in range(1, len(values) + 1):
        cell = sheet.cell(row=row, column=index)
        cell.border, cell.alignment = BORDER, WRAP
        if index in fills:
            cell.fill = fills[index]


def to_xlsx(audit: MatrixAudit, platforms: tuple[str, ...]) -> bytes:
    """A summary sheet, then one sheet per prefecture (and one for the provincial level)."""
    result = audit.result
    grid = Grid(audit, platforms)
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "汇总"
    heading = (
        f"政务新媒体矩阵检查汇总（截至{result.as_of.isoformat()}，政策：{result.policy_name}）"
    )
    _sheet_setup(summary, heading, ROLLUP_HEADERS)
    _add_row(summary, _rollup_row("全省", result.province), {})
    for rollup in result.prefectures:
        _add_row(summary, _rollup_row(rollup.name, rollup), {})
    summary.append([])
    start = summary.max_row + 1
    for index, label in enumerate(("问题类型", "代码", "数量"), start=1):
        cell = summary.cell(row=start, column=index, value=label)
        cell.fill, cell.font, cell.border = HEADER_FILL, HEADER_FONT, BORDER
    counts: dict[str, int] = defaultdict(int)
    for finding in result.findings:
        counts[finding.code.value] += 1
    for code in FindingCode:
        _add_row(summary, [FINDING_ZH[code], code.value, counts.get(code.value, 0)], {})

    reach_since = audit.reach_since.isoformat() if audit.reach_since else ""
    period = f"{reach_since[5:]}至{result.as_of.isoformat()[5:]}" if reach_since else ""
    headers = (
        ("机构代码", 12),
        ("机构名称", 26),
        ("层级", 12),
        *((PLATFORM_ZH.get(p, p), 26) for p in platforms),
        ("得分", 7),
        ("结论", 9),
        ("问题", 48),
        # reach (传播数据): reported beside the verdict, never part of it
        *((f"{f.label_zh}（{period}）", 13) for f in audit.reach_fields),
    )
    groups = [(r.code, r.name) for r in result.prefectures]
    if grid.members(result.province.code):
        groups.append((result.province.code, PROVINCE_SHEET))
    for group_code, name in groups:
        sheet = book.create_sheet(_sheet_name(name, book.sheetnames))
        _sheet_setup(
            sheet,
            f"{name} 政务新媒体检查明细（截至{result.as_of.isoformat()}）",
            headers,
        )
        for org in grid.members(group_code):
            cells = grid.cells(org)
            verdict = org_verdict_word(org)
            values: list[object] = [org.code, org.name, LEVEL_ZH.get(org.level, org.level)]
            values += [STATE_ZH[cells[p].state] + _detail(cells[p]) for p in platforms]
            findings = "；".join(finding_text(f) for f in org.findings)
            values += [org.score, VERDICT_ZH[verdict], findings]
            fills = {
                4 + i: FILLS[cells[p].state]
                for i, p in enumerate(platforms)
                if cells[p].state in FILLS
            }
            fills[len(values) - 1] = FILLS["pass" if verdict == "pass" else "fail"]
            reach = audit.org_reach(org.account_ids)
            values += [reach.get(f.key, 0) for f in audit.reach_fields]
            _add_row(sheet, values, fills)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _detail(cell: Cell) -> str:
    if cell.state == "fail":
        return f"（{cell.text}）"
    return ""


def _sheet_name(name: str, taken: list[str]) -> str:
    base = "".join(c for c in name if c not in "[]:*?/\\")[:31] or "sheet"
    candidate, n = base, 2
    while candidate in taken:
        suffix = f"({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    return candidate


# --- CSV -------------------------------------------------------------------------------------

CSV_HEADERS = ("地区", "机构代码", "机构名称", "层级", "得分", "结论", "问题数", "问题")
"""Then one column per reach count (``MatrixAudit.reach_fields``), summed over the org's
accounts."""


def to_csv(audit: MatrixAudit) -> bytes:
    """One row per audited org, UTF-8 with a BOM so Excel shows the Chinese correctly."""
    result = audit.result
    names = {r.code: r.name for r in result.prefectures}
    names.setdefault(result.province.code, result.province.name)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_HEADERS, *(f.label_zh for f in audit.reach_fields)])
    for org in result.orgs:
        if not org.audited:
            continue
        writer.writerow(
            [
                names.get(org.group_code, org.group_code),
                org.code,
                org.name,
                LEVEL_ZH.get(org.level, org.level),
                org.score,
                VERDICT_ZH[org_verdict_word(org)],
                len(org.findings),
                "；".join(finding_text(f) for f in org.findings),
                *(audit.org_reach(org.account_ids).get(f.key, 0) for f in audit.reach_fields),
            ]
        )
    return out.getvalue().encode("utf-8-sig")
