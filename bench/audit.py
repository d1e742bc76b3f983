"""Matrix audit benchmark: 10,000 accounts, 1,000,000 activity records, SQLite and PostgreSQL.

    .venv/bin/python bench/audit.py                      # SQLite only
    GOVHUB_BENCH_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/audit.py

For PostgreSQL the script creates a scratch database ``govhub_bench`` on that server and drops
it afterwards. It prints, per database, the time of the audit as the hub runs it (facts
aggregated in SQL, then ``rules.evaluate``) and of a naive baseline measured in the same run
(every activity row fetched and the last activity per account computed in a Python loop, then
the same evaluation). Target: the audit under 2 s.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.accounts.models import Account  # noqa: E402
from hub.audit import service  # noqa: E402
from hub.audit.models import AccountActivity, Spokesperson  # noqa: E402
from hub.audit.rules import evaluate  # noqa: E402
from hub.clocks.rules import SHANGHAI  # noqa: E402
from hub.db import engine_for  # noqa: E402
from hub.migrate import upgrade  # noqa: E402
from hub.orgs.models import Org  # noqa: E402
from hub.orgs.service import import_rows, parse_csv  # noqa: E402
from hub.policies import load_policy  # noqa: E402

ACCOUNTS = 10_000
ACTIVITY = 1_000_000
AS_OF = date(2026, 6, 30)
BATCH = 50_000
DATA = ROOT / "hub" / "data"


def seed(url: str) -> None:
    """Guizhou plus synthetic county departments: 5,000 orgs with two accounts each."""
    engine = engine_for(url)
    with Session(engine) as session:
        for name in ("guizhou-divisions.csv", "guizhou-departments.csv"):
            rows = parse_csv((DATA / name).read_text("utf-8"))
            import_rows(session=session, rows=rows, today=date(2026, 1, 1))
        session.commit()
    now = datetime.now(UTC)
    rng = random.Random(7)
    with engine.begin() as conn:
        counties = conn.execute(
            select(col(Org.id), col(Org.code), col(Org.path)).where(col(Org.level) == "county")
        ).all()
        existing = conn.execute(select(col(Org.id))).all()
        extra = ACCOUNTS // 2 - len(existing)
        departments = []
        for index in range(extra):
            county_id, county_code, county_path = counties[index % len(counties)]
            code = f"{county_code}-d{index:05d}"
            departments.append(
                {
                    "code": code,
                    "name": f"部门{index:05d}",
                    "level": "department",
                    "parent_id": county_id,
                    "path": f"{county_path}{code}/",
                    "livelihood": index % 3 == 0,
                    "press_office": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        conn.execute(insert(Org), departments)
        org_ids = [row[0] for row in conn.execute(select(Org.id).order_by(Org.id)).all()]  # type: ignore[call-overload]
        accounts = [
            {
                "org_id": org_id,
                "platform": platform,
                "name": f"账号{org_id}-{platform}",
                "handle": "",
                "opened_on": date(2014, 1, 1) + timedelta(days=rng.randrange(0, 3000)),
                "interaction_channel": rng.random() > 0.05,
                "status": "active",
                "kind": "",
                "credentials_encrypted": "",
                "last_seen_remote_id": "",
                "created_at": now,
                "updated_at": now,
            }
            for org_id in org_ids
            for platform in ("weibo", "wechat")
        ][:ACCOUNTS]
        conn.execute(insert(Account), accounts)
        people = [
            {
                "org_id": org_id,
                "name": f"发言人{org_id}",
                "role": "spokesperson",
                "title": "",
                "phone": "",
                "email": "",
                "appointed_on": date(2020, 1, 1) + timedelta(days=rng.randrange(0, 2300)),
                "filed_on": None,
                "published_on": None,
                "created_at": now,
                "updated_at": now,
            }
            for org_id in org_ids
        ]
        conn.execute(insert(Spokesperson), people)
        account_ids = [
            account_id
            for (account_id,) in conn.execute(select(col(Account.id)).order_by(col(Account.id)))
            if account_id is not None
        ]
    load_activity(url, account_ids, rng)


def _activity_rows(account_ids: list[int], rng: random.Random) -> Iterator[tuple[Any, ...]]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    span = int((datetime(2026, 9, 30, tzinfo=UTC) - start).total_seconds())
    per_account = ACTIVITY // len(account_ids)
    for account_id in account_ids:
        silent = rng.random() < 0.1  # one in ten went quiet months before the audit
        limit = span // 2 if silent else span
        for n in range(per_account):
            posted = start + timedelta(seconds=rng.randrange(limit))
            yield (account_id, f"{account_id}-{n}", posted, "", "日常发布")


def load_activity(url: str, account_ids: list[int], rng: random.Random) -> None:
    engine = engine_for(url)
    rows = _activity_rows(account_ids, rng)
    if make_url(url).get_backend_name() == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(
                "COPY account_activity (account_id, remote_id, posted_at, url, excerpt) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
        return
    table = AccountActivity.__table__  # type: ignore[attr-defined]
    columns = ("account_id", "remote_id", "posted_at", "url", "excerpt")
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) >= BATCH:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def hub_audit(url: str) -> int:
    policy = load_policy(["national-2019", "guizhou-2013"])
    with Session(engine_for(url)) as session:
        audit = service.run_audit(
            session=session,
            policy=policy,
            as_of=AS_OF,
            tz=SHANGHAI,
            now=datetime(2026, 7, 1, tzinfo=UTC),
        )
    return len(audit.result.findings)


def naive_audit(url: str) -> int:
    """Baseline: fetch every activity row and take the maximum per account in Python."""
    policy = load_policy(["national-2019", "guizhou-2013"])
    cutoff = service.end_of_day(AS_OF, SHANGHAI)
    with Session(engine_for(url)) as session:
        orgs = service.org_facts(session=session)
        accounts = service.account_facts(
            session=session,
            as_of=AS_OF,
            tz=SHANGHAI,
            platforms=policy.audit.platforms,
            today=AS_OF,
        )
        last: dict[int, datetime] = {}
        for account_id, posted in session.execute(
            select(AccountActivity.account_id, AccountActivity.posted_at)  # type: ignore[call-overload]
        ):
            if posted < cutoff and (account_id not in last or posted > last[account_id]):
                last[account_id] = posted
        people = service.spokesperson_facts(session=session, as_of=AS_OF)
    from dataclasses import replace

    accounts = [replace(a, last_activity_at=last.get(a.id)) for a in accounts]
    return len(evaluate(policy, orgs, accounts, people, AS_OF, tz=SHANGHAI).findings)


def timed(fn: Callable[[str], int], url: str, runs: int = 3) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        found = fn(url)
        best = min(best, time.perf_counter() - started)
    return best, found


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS govhub_bench"))
        conn.execute(text("CREATE DATABASE govhub_bench"))
    url = make_url(server_url).set(database="govhub_bench").render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS govhub_bench"))
        admin.dispose()


def bench(label: str, url: str) -> None:
    started = time.perf_counter()
    upgrade(url)
    seed(url)
    print(
        f"{label}: seeded {ACCOUNTS:,} accounts, {ACTIVITY:,} activity rows "
        f"in {time.perf_counter() - started:.1f} s"
    )
    seconds, findings = timed(hub_audit, url)
    baseline, baseline_findings = timed(naive_audit, url, runs=1)
    assert findings == baseline_findings, (findings, baseline_findings)
    verdict = "OK" if seconds < 2 else "OVER TARGET"
    print(f"{label}: audit (SQL aggregation) {seconds:.2f} s  [{verdict}, target < 2 s]")
    print(f"{label}: baseline (Python loop)  {baseline:.2f} s  ({baseline / seconds:.1f}x slower)")
    print(f"{label}: findings {findings:,}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.sqlite3")
    pg = os.environ.get("GOVHUB_BENCH_PG")
    if pg:
        with postgres_database(pg) as url:
            bench("postgresql", url)
    else:
        print("postgresql: skipped (set GOVHUB_BENCH_PG to a server URL)")


if __name__ == "__main__":
    main()
