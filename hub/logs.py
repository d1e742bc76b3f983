"""Log lines: one configuration for the web server, the workers and beat.

- ``GOVHUB_ENV=production``: one JSON object a line (python-json-logger), for a log shipper;
  otherwise readable text: ``time LEVEL logger: message  key=value ...``.
- Every line written while a request is handled carries its ``request_id``
  (:data:`REQUEST_ID`, set by :class:`hub.web.observe.RequestLog`).
- Two loggers carry the lines an operator watches: ``govhub.access`` (one per request) and
  ``govhub.outcomes`` (one per settled delivery attempt). Outcomes stay visible at
  ``--log-level warning`` (the demo's console): they are what a quiet console is for.
- No secrets: every line passes :class:`RedactSecrets` (access tokens, app secrets, passwords,
  bearer tokens in URLs, bodies and messages), on top of the connectors' own filters on httpx.

Celery's worker and beat use it through Celery's ``setup_logging`` signal (scheduler/app.py);
``govhub serve`` through :func:`configure` in each web process (hub/web/app.py).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

ACCESS = "govhub.access"
OUTCOMES = "govhub.outcomes"
REQUEST_ID: ContextVar[str] = ContextVar("govhub_request_id", default="")

# The structured fields a line may carry (``extra=``); text lines show them as key=value.
FIELDS = (
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "user_id",
    "delivery_id",
    "post_id",
    "platform",
    "account_id",
    "state",
    "attempt",
    "action",
    "error_class",
    "error_code",
    "error",
)

_SECRET_PAIR = re.compile(
    r"""(?ix)
    (["']?(?:access_token|refresh_token|app_?secret|client_secret|secret|password|passwd
        |api_key|token|encoding_aes_key|callback_token)["']?\s*[=:]\s*["']?)
    [^&\s"',}]+
    """
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    """``text`` with the value of every secret-looking pair and bearer token replaced by ***."""
    return _BEARER.sub(r"\1***", _SECRET_PAIR.sub(r"\1***", text))


class RedactSecrets(logging.Filter):
    """Removes secrets from the message and the string fields of every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for name in FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = redact(value)
        if record.exc_info:
            # formatted here, cleaned, and kept as text only: formatters use it as it is
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestContext(logging.Filter):
    """Gives every line written while a request is handled that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.__dict__.get("request_id"):
            request_id = REQUEST_ID.get()
            if request_id:
                record.request_id = request_id
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-30 10:00:00.123 INFO govhub.access: GET /api/v1/posts 200  request_id=... ``

    Milliseconds, because a fan-out settles 200 copies in a few seconds: whole seconds cannot
    tell which of them waited for what."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{name}={record.__dict__[name]}"
            for name in FIELDS
            if record.__dict__.get(name) not in (None, "")
        ]
        if not pairs:
            return line
        head, sep, rest = line.partition("\n")  # a traceback stays below the fields
        return f"{head}  {' '.join(pairs)}{sep}{rest}"


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's message with ANSI colours
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def level_of(level: str | int) -> int:
    if isinstance(level, int):
        return level
    found = logging.getLevelName(level.upper())
    return found if isinstance(found, int) else logging.INFO


def configure(
    level: str | int = "info", *, production: bool | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log line to stderr (or ``stream``) in the hub's format; idempotent (one
    handler on the root logger, replaced when ``stream`` is given).

    ``production`` defaults to ``GOVHUB_ENV == "production"``.
    """
    if production is None:
        from hub.config import get_settings

        production = get_settings().env == "production"
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "govhub", False)), None)
    if handler is not None and stream is not None:
        root.removeHandler(handler)
        handler = None
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.govhub = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(json_formatter() if production else TextFormatter())
    handler.filters = [RequestContext(), RedactSecrets()]
    numeric = level_of(level)
    root.setLevel(numeric)
    # what an operator watches stays visible on a quiet console (--log-level warning)
    logging.getLogger(OUTCOMES).setLevel(
        min(numeric, logging.INFO) if numeric <= logging.WARNING else numeric
    )
    # one INFO line per outgoing call (with its URL) is noise, and so are Celery's two lines per
    # task ("received", "succeeded in"): beat's sweeper and scheduler run every second, four
    # lines a second on every worker, and a fan-out's copies already have their outcome line;
    # a task that fails is still logged (Celery logs it as an error); debug shows them all
    quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    for name in ("httpx", "httpcore", "celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(quiet)
    return handler


@contextmanager
def serving(level: str, *, access_log: bool) -> Iterator[None]:
    """``govhub serve``: this process and every web process it starts (they read the
    environment) log in the hub's format, with or without access lines; undone afterwards."""
    names = ("GOVHUB_LOG_LEVEL", "GOVHUB_ACCESS_LOG")
    before = {name: os.environ.get(name) for name in names}
    os.environ["GOVHUB_LOG_LEVEL"] = level.lower()
    os.environ["GOVHUB_ACCESS_LOG"] = "1" if access_log else "0"
    configure(level)
    try:
        yield
    finally:
        unconfigure()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unconfigure() -> None:
    """Remove the hub's handler from the root logger (tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "govhub", False)]:
        root.removeHandler(handler)


def outcome(level: int, message: str, *args: Any, **fields: Any) -> None:
    """One line on ``govhub.outcomes`` with structured ``fields``."""
    logging.getLogger(OUTCOMES).log(level, message, *args, extra=fields)
