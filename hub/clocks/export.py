"""The monthly compliance summary (时限月度汇总) and its Excel export."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session

from hub.clocks import rules
from hub.clocks.models import Clock
from hub.clocks.rules import ClockStatus
from hub.clocks.service import STATUS_ZH, kind_title, list_clocks, status_of
from hub.errors import Invalid
from hub.orgs.models import Org
from hub.policies import Policy

# -- the monthly summary ------------------------------------------------------------------------


def parse_month(month: str) -> tuple[int, int]:
    try:
        year_text, month_text = month.split("-")
        year, number = int(year_text), int(month_text)
        date(year, number, 1)
    except ValueError:
        raise Invalid(
            "月份格式应为 2026-10，而不是 %(month)r", field="month", month=month
        ) from None
    return year, number


@dataclass
class OrgSummary:
    code: str
    name: str
    counts: dict[ClockStatus, int] = field(default_factory=dict)

    @property
    def opened(self) -> int:
        return sum(self.counts.values())


def monthly_summary(
    *, session: Session, month: str, scope_path: str | None, now: datetime, tz: ZoneInfo
) -> tuple[list[OrgSummary], list[tuple[Clock, Org]]]:
    """Per org, the clocks started in ``month`` (local time) by their status now."""
    year, number = parse_month(month)
    start = datetime.combine(date(year, number, 1), time(), tzinfo=tz)
    following = rules.add_months(date(year, number, 1), 1)
    end = datetime.combine(following, time(), tzinfo=tz)
    rows = list_clocks(
        session=session,
        now=now,
        scope_path=scope_path,
        started_from=start.astimezone(UTC),
        started_before=end.astimezone(UTC),
    )
    by_org: dict[str, OrgSummary] = {}
    for clock, org in sorted(rows, key=lambda row: (row[1].path, row[0].started_at)):
        summary = by_org.setdefault(org.code, OrgSummary(org.code, org.name))
        status = status_of(clock, now)
        summary.counts[status] = summary.counts.get(status, 0) + 1
    return list(by_org.values()), rows


SUMMARY_HEADERS = [
    "机构代码",
    "机构名称",
    "开启",
    "按时完成",
    "逾期完成",
    "逾期未完成",
    "进行中",
    "已撤销",
    "按时完成率",
]


def summary_xlsx(
    *,
    session: Session,
    month: str,
    scope_path: str | None,
    now: datetime,
    tz: ZoneInfo,
    policy: Policy,
) -> bytes:
    """The monthly compliance summary as an Excel workbook: 汇总 (per org) and 明细 (clocks)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    summaries, rows = monthly_summary(
        session=session, month=month, scope_path=scope_path, now=now, tz=tz
    )
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "汇总"
    sheet.append(SUMMARY_HEADERS)
    for row in summaries:
        met = row.counts.get(ClockStatus.met, 0)
        judged = (
            met + row.counts.get(ClockStatus.met_late, 0) + row.counts.get(ClockStatus.overdue, 0)
        )
        sheet.append(
            [
                row.code,
                row.name,
                row.opened,
                met,
                row.counts.get(ClockStatus.met_late, 0),
                row.counts.get(ClockStatus.overdue, 0),
                row.counts.get(ClockStatus.running, 0),
                row.counts.get(ClockStatus.cancelled, 0),
                f"{met / judged:.0%}" if judged else "",
            ]
        )
    sheet.append([])
    sheet.append([f"{month} 开启的时限，状态截至 {now.astimezone(tz):%Y-%m-%d %H:%M}"])
    details = workbook.create_sheet("明细")
    details.append(
        ["编号", "类型", "机构", "事项", "开始时间", "截止时间", "日历已确认", "状态", "完成时间"]
    )
    for clock, org in rows:
        details.append(
            [
                clock.id,
                kind_title(policy, clock.kind),
                org.name,
                clock.subject,
                f"{clock.started_at.astimezone(tz):%Y-%m-%d %H:%M}",
                f"{clock.due_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
                "是" if clock.calendar_confirmed else "否（推算）",
                STATUS_ZH[status_of(clock, now)],
                f"{clock.stopped_at.astimezone(tz):%Y-%m-%d %H:%M}" if clock.stopped_at else "",
            ]
        )
    for ws in (sheet, details):
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
