"""Clock reminders reach people once per threshold: real SMTP, a real HTTP webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.clocks.notify import SignedWebhookPoster, SmtpMailer
from hub.clocks.reminders import send_due_reminders
from hub.config import get_settings
from hub.db import engine_for
from hub.users.models import User

Auth = dict[str, dict[str, str]]
T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Guizhou; an emergency is due at 12:00

EMAILS = {
    "kaili-editor": "kaili@gov.test",  # an editor of the clock's org
    "supervisor": "duban@gov.test",  # supervisors hear about everything
    "huangping-editor": "huangping@gov.test",  # another county: not told
    "qdn-editor": "qdn@gov.test",  # the parent prefecture: not told
    "kaili-reviewer": "reviewer@gov.test",  # not an editor: not told
}


class Inbox:
    """aiosmtpd handler keeping what the server accepted."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            message = message_from_bytes(envelope.content, policy=email_policy.default)
            assert isinstance(message, EmailMessage)
            message["X-Envelope-To"] = recipient
            self.received.append(message)
        return "250 Message accepted for delivery"

    def recipients(self) -> list[str]:
        return sorted(str(m["X-Envelope-To"]) for m in self.received)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def people(guizhou: dict[str, str]) -> dict[str, str]:
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        for username, email in EMAILS.items():
            user = session.exec(select(User).where(User.username == username)).one()
            user.email = email
            session.add(user)
        session.commit()
    return guizhou


def open_emergency(client: TestClient, auth: Auth, started: datetime, subject: str) -> int:
    response = client.post(
        "/api/v1/clocks",
        json={
            "kind": "emergency",
            "org_code": "522601",
            "subject": subject,
            "started_at": started.isoformat(),
        },
        headers=auth["kaili-editor"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_each_threshold_is_mailed_once_even_after_a_restart(
    client: TestClient, auth: Auth, people: dict[str, str], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    clock_id = open_emergency(client, auth, T0, "凯里市山洪灾害")
    mailer = SmtpMailer("127.0.0.1", port, sender="govhub@gov.test")
    engine = engine_for(people["GOVHUB_DATABASE_URL"])

    def run(at: timedelta) -> list[str]:
        with Session(engine) as session:  # a fresh session each pass, like a restarted worker
            sent = send_due_reminders(
                session=session, now=T0 + at, mailer=mailer, webhook_poster=None
            )
        return [s.threshold for s in sent]

    assert run(timedelta(hours=1)) == []  # a third of the time used
    assert inbox.received == []

    assert run(timedelta(hours=1, minutes=35)) == ["50"]
    assert inbox.recipients() == ["duban@gov.test", "kaili@gov.test"]
    first = inbox.received[0]
    assert first["Subject"] == "【时限提醒】凯里市：凯里市山洪灾害（时限已过半）"
    assert "截止：2026-11-20 12:00:00" in first.get_content()

    assert run(timedelta(hours=1, minutes=35)) == []  # the same pass again
    assert run(timedelta(hours=1, minutes=50)) == []  # later, after a "restart"
    assert len(inbox.received) == 2

    assert run(timedelta(hours=2, minutes=30)) == ["80"]
    assert run(timedelta(hours=2, minutes=31)) == []
    assert run(timedelta(hours=3, minutes=1)) == ["overdue"]
    assert run(timedelta(hours=9)) == []
    assert len(inbox.received) == 6
    subjects = sorted(
        str(m["Subject"]) for m in inbox.received if m["X-Envelope-To"] == "kaili@gov.test"
    )
    assert [s.split("（")[-1] for s in subjects] == ["已逾期）", "时限已用去80%）", "时限已过半）"]

    shown = client.get(f"/api/v1/clocks/{clock_id}", headers=auth["kaili-editor"]).json()
    assert shown["reminders_sent"] == ["50", "80", "overdue"]

    # answered after the overdue reminder: nothing more, ever
    client.post(f"/api/v1/clocks/{clock_id}/stop", headers=auth["kaili-editor"])
    assert run(timedelta(days=3)) == []


def test_after_an_outage_only_the_highest_threshold_is_sent(
    client: TestClient, auth: Auth, people: dict[str, str], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    open_emergency(client, auth, T0, "停电")
    with Session(engine_for(people["GOVHUB_DATABASE_URL"])) as session:
        sent = send_due_reminders(
            session=session,
            now=T0 + timedelta(hours=5),
            mailer=SmtpMailer("127.0.0.1", port, sender="govhub@gov.test"),
            webhook_poster=None,
        )
    assert [s.threshold for s in sent] == ["overdue"]
    assert len(inbox.received) == 2  # one message each, not three


class Receiver(BaseHTTPRequestHandler):
    statuses: list[int]
    received: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.statuses.pop(0) if self.statuses else 204
        if status < 300:
            self.received.put((dict(self.headers.items()), body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("TestReceiver", (Receiver,), {"statuses": [], "received": queue.Queue()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/govhub/reminders", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_reminders_are_signed_and_retried_when_refused(
    client: TestClient,
    auth: Auth,
    people: dict[str, str],
    receiver: tuple[str, type[Receiver]],
) -> None:
    url, handler = receiver
    secret = "reminder-secret"
    clock_id = open_emergency(client, auth, T0, "道路塌方")
    poster = SignedWebhookPoster(url, secret)
    engine = engine_for(people["GOVHUB_DATABASE_URL"])
    handler.statuses = [503]  # the receiver is down for the first attempt

    def run() -> list[str]:
        with Session(engine) as session:
            sent = send_due_reminders(
                session=session, now=T0 + timedelta(hours=4), mailer=None, webhook_poster=poster
            )
        return [f"{s.threshold}:{'ok' if s.webhook else 'failed'}" for s in sent]

    assert run() == ["overdue:failed"]
    assert run() == ["overdue:ok"]  # the failed claim was released and retried
    assert run() == []
    headers, body = handler.received.get(timeout=5)
    assert handler.received.empty()
    timestamp = headers["X-Govhub-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Govhub-Signature"] == "sha256=" + expected.hexdigest()
    assert headers["X-Govhub-Event"] == "clock.reminder"
    payload = json.loads(body)
    assert payload["threshold"] == "overdue"
    assert payload["clock"]["id"] == clock_id
    assert payload["clock"]["due_at"] == "2026-11-20T12:00:00+08:00"
    assert payload["clock"]["org_name"] == "凯里市"


def test_the_beat_task_and_the_cli_use_the_configured_smtp_server(
    client: TestClient,
    auth: Auth,
    people: dict[str, str],
    smtp: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduler.tasks_clocks import remind

    inbox, port = smtp
    monkeypatch.setenv("GOVHUB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GOVHUB_SMTP_PORT", str(port))
    monkeypatch.setenv("GOVHUB_SMTP_FROM", "fabu@gov.test")
    get_settings.cache_clear()
    open_emergency(client, auth, datetime.now(UTC) - timedelta(minutes=100), "暴雨预警")

    assert remind() == 1  # the task body, as a worker runs it
    assert inbox.recipients() == ["duban@gov.test", "kaili@gov.test"]
    assert inbox.received[0]["From"] == "fabu@gov.test"
    again = CliRunner().invoke(cli, ["clocks", "remind"])
    assert again.exit_code == 0 and "0 reminder(s) sent" in again.output
    listed = CliRunner().invoke(cli, ["clocks", "list", "--org", "522601"])
    assert listed.exit_code == 0 and "暴雨预警" in listed.output and "running" in listed.output
    assert len(inbox.received) == 2


def test_two_passes_racing_for_the_same_reminder_send_it_once(
    client: TestClient, auth: Auth, people: dict[str, str], smtp: tuple[Inbox, int]
) -> None:
    from hub.clocks.reminders import _claim

    inbox, port = smtp
    clock_id = open_emergency(client, auth, T0, "桥梁垮塌")
    engine = engine_for(people["GOVHUB_DATABASE_URL"])
    with Session(engine) as first, Session(engine) as second:
        # both passes decided "50" is due before either claimed it; the unique key decides
        assert _claim(session=first, clock_id=clock_id, threshold="50", now=T0) is not None
        assert _claim(session=second, clock_id=clock_id, threshold="50", now=T0) is None
        # the loser's session is still usable: its pass sends nothing for this clock
        sent = send_due_reminders(
            session=second,
            now=T0 + timedelta(hours=1, minutes=40),
            mailer=SmtpMailer("127.0.0.1", port, sender="govhub@gov.test"),
            webhook_poster=None,
        )
    assert sent == [] and inbox.received == []


def test_the_cli_reports_failed_reminders_as_failed(
    client: TestClient,
    auth: Auth,
    people: dict[str, str],
    receiver: tuple[str, type[Receiver]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, handler = receiver
    monkeypatch.setenv("GOVHUB_REMINDER_WEBHOOK_URL", url)
    monkeypatch.setenv("GOVHUB_REMINDER_WEBHOOK_SECRET", "reminder-secret")
    get_settings.cache_clear()
    started = datetime.now(UTC) - timedelta(minutes=100)
    for subject in ("暴雨预警", "道路塌方", "山体滑坡"):
        open_emergency(client, auth, started, subject)
    handler.statuses = [503, 503, 503]  # the receiver refuses every post

    failed = CliRunner().invoke(cli, ["clocks", "remind"])
    assert failed.exit_code == 1
    assert "0 reminder(s) sent, 3 failed" in failed.output
    assert failed.output.count("FAILED, will retry") == 3 and "503" in failed.output

    retried = CliRunner().invoke(cli, ["clocks", "remind"])  # the receiver is back
    assert retried.exit_code == 0, retried.output
    assert "3 reminder(s) sent, 0 failed" in retried.output
    assert handler.received.qsize() == 3
