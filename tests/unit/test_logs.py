"""Log lines keep secrets out and carry their fields; metric labels stay bounded; the metrics
token is checked like the other secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from connectors.errors import AccountBlocked, QuotaExhausted, RateLimited, Transient
from hub import logs
from hub.config import Settings
from hub.metrics import error_class


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET https://api.example.cn/cgi-bin/x?access_token=ACCESS123&type=news", "ACCESS123"),
        ("POST /token grant_type=client_credential&appid=wx1&secret=APPSECRET9", "APPSECRET9"),
        ('{"username": "editor", "password": "Hunter2-Hunter2"}', "Hunter2-Hunter2"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("app_secret='s3cr3t-app' encoding_aes_key=AESKEY43", "s3cr3t-app"),
        ("app_secret='s3cr3t-app' encoding_aes_key=AESKEY43", "AESKEY43"),
    ],
)
def test_redact_removes_secret_values(line: str, secret: str) -> None:
    cleaned = logs.redact(line)
    assert secret not in cleaned and "***" in cleaned


def test_redact_leaves_ordinary_words_alone() -> None:
    line = "POST /api/v1/auth/token 200 delivery 12 of post 3: published"
    assert logs.redact(line) == line


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logs.unconfigure()
    logging.getLogger().setLevel(logging.WARNING)


def test_json_lines_carry_fields_and_no_secret_in_fields_or_tracebacks(
    stream: io.StringIO,
) -> None:
    logs.configure("info", production=True, stream=stream)
    token = logs.REQUEST_ID.set("req-1")
    try:
        logs.outcome(
            logging.WARNING,
            "delivery %s: %s",
            9,
            "failed",
            delivery_id=9,
            state="failed",
            error="platform said: secret=LEAKED1 is wrong",
        )
        try:
            raise RuntimeError("call failed: access_token=LEAKED2")
        except RuntimeError:
            logging.getLogger("hub.test").exception("boom")
    finally:
        logs.REQUEST_ID.reset(token)
    text = stream.getvalue()
    assert "LEAKED1" not in text and "LEAKED2" not in text
    first, second = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    assert first["logger"] == "govhub.outcomes" and first["level"] == "WARNING"
    assert first["delivery_id"] == 9 and first["request_id"] == "req-1"
    assert first["error"] == "platform said: secret=*** is wrong"
    assert second["request_id"] == "req-1" and "access_token=***" in second["exc_info"]


def test_outcomes_stay_visible_at_warning_and_go_at_error(stream: io.StringIO) -> None:
    logs.configure("warning", production=False, stream=stream)
    logging.getLogger("hub.test").info("chatter")
    logs.outcome(logging.INFO, "delivery 1: published", delivery_id=1, state="published")
    assert "chatter" not in stream.getvalue()
    assert "INFO govhub.outcomes: delivery 1: published  delivery_id=1 state=published" in (
        stream.getvalue()
    )
    logs.configure("error", production=False, stream=stream)
    logs.outcome(logging.INFO, "delivery 2: published", delivery_id=2)
    assert "delivery 2" not in stream.getvalue()


def test_celerys_per_task_lines_show_at_debug_and_failures_always(stream: io.StringIO) -> None:
    """A worker at info writes one line per copy (the outcome), not Celery's "received" and
    "succeeded" for every task (beat's every-second sweeps included); a failed task still shows."""
    trace, strategy = (
        logging.getLogger("celery.app.trace"),
        logging.getLogger("celery.worker.strategy"),
    )
    logs.configure("info", production=False, stream=stream)
    strategy.info("Task delivery.sweep[1] received")
    trace.info("Task delivery.sweep[1] succeeded in 0.01s: 0")
    trace.error("Task delivery.publish[2] raised unexpected: RuntimeError('boom')")
    logs.outcome(logging.INFO, "delivery 3: published", delivery_id=3)
    text = stream.getvalue()
    assert "received" not in text and "succeeded" not in text
    assert "raised unexpected" in text and "delivery 3: published" in text
    logs.configure("debug", production=False, stream=stream)
    trace.info("Task delivery.sweep[4] succeeded in 0.01s: 0")
    assert "delivery.sweep[4] succeeded" in stream.getvalue()


def test_error_classes_are_the_connector_error_tree_in_snake_case() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert error_class(None) == "none"
    assert error_class(Transient("x")) == "transient"
    assert error_class(RateLimited("x", until=now)) == "rate_limited"
    assert error_class(QuotaExhausted("x", until=now)) == "quota_exhausted"
    assert error_class(AccountBlocked("x")) == "account_blocked"


def test_metrics_token_is_a_secret_of_some_length() -> None:
    assert Settings(metrics_token="").metrics_token is None  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(metrics_token="short")  # type: ignore[arg-type]
    settings = Settings(metrics_token="x" * 32)  # type: ignore[arg-type]
    assert "x" * 32 not in repr(settings) and "x" * 32 not in settings.model_dump_json()
