"""`govhub sandbox`: every simulator in the foreground until Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connectors.sandbox.server import free_port


@pytest.mark.e2e
def test_sandbox_serves_weibo_wechat_and_partner_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        index = None
        while index is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                index = httpx.get(base, timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert index == {"sandboxes": ["weibo", "wechat", "partner"]}
        minted = httpx.post(f"{base}/weibo/_sandbox/tokens", json={}).json()
        assert minted["access_token"]
        app = {"appid": "wxcli", "secret": "s"}
        assert httpx.post(f"{base}/wechat/_sandbox/apps", json=app).status_code == 200
        token = httpx.get(
            f"{base}/wechat/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": "wxcli", "secret": "s"},
        ).json()
        assert token["access_token"]
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert f"GOVHUB_WECHAT_API_BASE={base}/wechat" in output
    assert proc.returncode == 0
