"""`govhub demo` (what `make demo` runs) on a fresh folder: up within 60 s, stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connectors.sandbox.server import free_port


@pytest.mark.e2e
def test_demo_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        assert ready is not None and ready.status_code == 200, "the demo did not answer in 60 s"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "kaili-editor", "password": "Govhub-Demo-2026"},
        ).json()["access_token"]
        accounts = httpx.get(
            f"{base}/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert accounts and all(a["org_code"] == "522601" for a in accounts)
        by_platform = {a["platform"]: a for a in accounts}
        assert {"hall", "weibo", "wechat"} <= set(by_platform)
        assert by_platform["weibo"]["token_expires_at"]
        for platform in ("weibo", "wechat"):  # bound to the demo's sandboxes
            test = httpx.post(
                f"{base}/api/v1/accounts/{by_platform[platform]['id']}/test",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).json()
            assert test["ok"] is True, (platform, test)
        assert (tmp_path / "var" / "govhub.sqlite3").exists()
        published = _publish_to_the_hall(base, token, by_platform["hall"]["id"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    assert re.search(r"user kaili-editor +password Govhub-Demo-2026", output)
    assert "/weibo /wechat /partner" in output
    # quiet: no Celery banner or INFO lines, no access log, but each delivery's outcome; the
    # last thing said before Ctrl+C is where to go and how to log in
    info = [line for line in output.splitlines() if " INFO " in line]
    assert all(" INFO govhub.outcomes: " in line for line in info), info
    assert re.search(
        rf"govhub.outcomes: delivery \d+ of post {published} to hall .*: published", output
    )
    assert "celery@" not in output and "GET /readyz" not in output
    before_stop = output[: output.rfind("Ctrl+C stops it.")]
    tail = before_stop[before_stop.rfind("govhub is ready") :]
    assert f"open http://127.0.0.1:{port}/" in tail
    assert re.search(r"user kaili-editor +password Govhub-Demo-2026", tail)
    # every child (web, worker, beat) has gone with it
    leftover = subprocess.run(
        ["pgrep", "-f", f"--port {port}"], capture_output=True, text=True
    ).stdout.strip()
    assert leftover == ""
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)


def _publish_to_the_hall(base: str, editor_token: str, account_id: int) -> int:
    """凯里市's editor writes a post for its hall account, its reviewer approves it; the demo's
    worker publishes it (polled, bounded)."""
    editor = {"Authorization": f"Bearer {editor_token}"}
    reviewer_token = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": "kaili-reviewer", "password": "Govhub-Demo-2026"},
    ).json()["access_token"]
    reviewer = {"Authorization": f"Bearer {reviewer_token}"}
    post = httpx.post(
        f"{base}/api/v1/posts",
        json={"title": "演示稿件", "body": "演示内容。", "target_account_ids": [account_id]},
        headers=editor,
    ).json()["id"]
    assert httpx.post(f"{base}/api/v1/posts/{post}/submit", headers=editor).is_success
    assert httpx.post(
        f"{base}/api/v1/posts/{post}/approve", headers=reviewer, timeout=10
    ).is_success
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline and status != "published":
        status = httpx.get(f"{base}/api/v1/posts/{post}", headers=editor).json()["status"]
        time.sleep(0.2)
    assert status == "published"
    return int(post)
