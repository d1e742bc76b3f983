"""Reminder channels: e-mail over SMTP and a signed webhook.

Both are small classes behind a protocol so :func:`hub.clocks.reminders.send_due_reminders` takes
whichever the settings configure (``GOVHUB_SMTP_HOST``, ``GOVHUB_REMINDER_WEBHOOK_URL``; either
may be off). The webhook is signed like the partner webhooks (``connectors/webhook.py``)::

    X-Govhub-Timestamp: <unix seconds>
    X-Govhub-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from hub.config import Settings

TIMESTAMP_HEADER = "X-Govhub-Timestamp"
SIGNATURE_HEADER = "X-Govhub-Signature"
EVENT_HEADER = "X-Govhub-Event"


class Mailer(Protocol):
    sender: str

    def send(self, messages: Sequence[EmailMessage]) -> None:
        """Send every message; raise (``smtplib.SMTPException``, ``OSError``) if it cannot."""


class WebhookPoster(Protocol):
    def post(self, event: str, payload: Mapping[str, Any]) -> None:
        """POST ``payload`` as signed JSON; raise (``httpx.HTTPError``) unless it is accepted."""


class SmtpMailer:
    """Sends over one SMTP connection per batch (STARTTLS and login when configured)."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 15.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self._user, self._password = user, password
        self.starttls, self.timeout = starttls, timeout

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self.host!r}, port={self.port}, user={self._user!r})"

    def send(self, messages: Sequence[EmailMessage]) -> None:
        if not messages:
            return
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._user:
                smtp.login(self._user, self._password or "")
            for message in messages:
                smtp.send_message(message)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Govhub-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class SignedWebhookPoster:
    """POSTs JSON events to the operator's reminder endpoint, signed with the shared secret."""

    def __init__(
        self, url: str, secret: str, *, client: httpx.Client | None = None, timeout: float = 10.0
    ) -> None:
        self.url = url
        self._secret = secret
        self._client = client
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SignedWebhookPoster(url={self.url!r}, secret=<redacted>)"

    def post(self, event: str, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            EVENT_HEADER: event,
        }
        if self._client is not None:
            response = self._client.post(self.url, content=body, headers=headers)
        else:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                response = client.post(self.url, content=body, headers=headers)
        response.raise_for_status()


def mailer_from_settings(settings: Settings) -> SmtpMailer | None:
    """The configured mailer, or ``None`` when ``GOVHUB_SMTP_HOST`` is unset (e-mail off)."""
    if not settings.smtp_host:
        return None
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        sender=settings.smtp_from,
        user=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
    )


def webhook_from_settings(settings: Settings) -> SignedWebhookPoster | None:
    """The configured reminder webhook, or ``None`` when ``GOVHUB_REMINDER_WEBHOOK_URL`` is unset."""
    if not settings.reminder_webhook_url:
        return None
    return SignedWebhookPoster(
        settings.reminder_webhook_url, settings.reminder_webhook_secret or ""
    )
