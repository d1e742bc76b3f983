"""`make test`'s pytest: the suite in one process, or in two side by side when PostgreSQL is set.

With ``GOVHUB_TEST_DATABASE_URL`` set (as ``.ci/run`` does), the tests parametrized on
PostgreSQL (their ids name ``postgresql``) run in one pytest process and everything else (SQLite,
unit, contract, browser) in another, at the same time. The two share nothing that a test resets:
the PostgreSQL half has the test database and ``GOVHUB_TEST_REDIS_URL``; the other half has no
PostgreSQL and its own Redis database (the same server, database 13, or
``GOVHUB_TEST_REDIS_URL_EMBEDDED``) for its Redis tests; each has its own pytest temporary folder.
One process ran the suite in ~29 minutes on CI's two cores, most of it waiting on subprocesses,
browsers and databases rather than computing.

The embedded half prints as it goes; the PostgreSQL half's output follows when both are done.
The exit status is the first failure's (0 when both passed). Arguments go to both pytests.

    .venv/bin/python tests/halves.py [pytest args]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EMBEDDED_REDIS_DB = 13


def embedded_redis(url: str) -> str:
    """``redis://host:6379/15`` -> ``redis://host:6379/13`` (another database, same server)."""
    override = os.environ.get("GOVHUB_TEST_REDIS_URL_EMBEDDED", "")
    if override or not url:
        return override
    base = re.sub(r"/\d*$", "", url.split("?")[0])
    db = EMBEDDED_REDIS_DB if not url.split("?")[0].endswith(f"/{EMBEDDED_REDIS_DB}") else 12
    return f"{base}/{db}"


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if not os.environ.get("GOVHUB_TEST_DATABASE_URL"):
        return subprocess.call([*pytest, *args])
    temp = Path(tempfile.mkdtemp(prefix="govhub-halves-"))
    embedded_env = {k: v for k, v in os.environ.items() if k != "GOVHUB_TEST_DATABASE_URL"}
    redis_url = embedded_redis(os.environ.get("GOVHUB_TEST_REDIS_URL", ""))
    if redis_url:
        embedded_env["GOVHUB_TEST_REDIS_URL"] = redis_url
    started = time.monotonic()
    log = (temp / "postgresql.log").open("w")
    postgresql = subprocess.Popen(
        [*pytest, "-k", "postgresql", f"--basetemp={temp / 'pytest-postgresql'}", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    print(
        f"tests/halves.py: the PostgreSQL half runs beside this one (output at the end, and in "
        f"{temp / 'postgresql.log'}); this half: SQLite and the rest, Redis {redis_url or '-'}",
        flush=True,
    )
    embedded = subprocess.call(
        [*pytest, f"--basetemp={temp / 'pytest-embedded'}", *args], env=embedded_env
    )
    embedded_s = time.monotonic() - started
    postgresql_code = postgresql.wait()
    log.close()
    print("\n======== the PostgreSQL half ========", flush=True)
    sys.stdout.write((temp / "postgresql.log").read_text(errors="replace"))
    print(
        f"\ntests/halves.py: SQLite and the rest exit {embedded} after {embedded_s:.0f} s; "
        f"PostgreSQL exit {postgresql_code} after {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return embedded or postgresql_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
