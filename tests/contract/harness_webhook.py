"""Webhook harness: WebhookConnector against the PartnerSandbox receiver over real HTTP."""

from __future__ import annotations

import itertools
import secrets

import httpx

from connectors.base import Account, Content, Rendition
from connectors.errors import Misconfigured, RateLimited, Rejected, Transient
from connectors.sandbox.partner import PartnerSandbox
from connectors.sandbox.server import serve
from connectors.webhook import WebhookConnector
from tests.contract.harness import ErrorCase, sample_content

PLATFORM = "webhook"
CAPABILITIES = frozenset({"drop"})
PUBLIC_BASE_URL = "http://hall.test"
ERROR_CASES = [
    ErrorCase("500", Transient),
    ErrorCase("503", Transient),
    ErrorCase("408", Transient),
    ErrorCase("429", RateLimited),
    ErrorCase("401", Misconfigured),
    ErrorCase("302", Misconfigured),
    ErrorCase("400", Rejected),
    ErrorCase("410", Rejected),
    ErrorCase("503", Transient, "withdraw"),
]

_names = itertools.count(1)


class WebhookHarness:
    platform = PLATFORM

    def __init__(self) -> None:
        self.sandbox = PartnerSandbox()
        self.server = serve(self.sandbox)
        self.client = httpx.Client()
        self.control = httpx.Client(base_url=f"{self.server.base_url}/_sandbox")
        # The partner runs on loopback here, so the SSRF guard is off (tested in unit tests).
        self.connector = WebhookConnector(
            self.client, allow_private=True, timeout=httpx.Timeout(5.0)
        )

    def new_account(self) -> Account:
        name = f"partner{next(_names)}"
        secret = secrets.token_hex(16)
        self.control.post("/secrets", json={"name": name, "secret": secret}).raise_for_status()
        return Account(
            id=next(_names),
            platform=PLATFORM,
            handle=name,
            credentials={"url": f"{self.server.base_url}/hooks/{name}", "secret": secret},
        )

    def content(self) -> Content:
        return sample_content(PUBLIC_BASE_URL)

    def stored_ids(self, account: Account) -> list[str]:
        entries = self.control.get(f"/entries/{account.handle}").raise_for_status().json()
        return list(entries["entries"])

    def inject(self, case: ErrorCase, account: Account) -> None:
        fault = {"status": int(case.name), "times": 1, "retry_after": 30}
        self.control.post("/faults", json=fault).raise_for_status()

    def inject_drop(self) -> None:
        self.control.post("/faults", json={"drop": True}).raise_for_status()

    def clear_faults(self) -> None:
        self.sandbox.reset()

    def secrets(self, account: Account) -> list[str]:
        return [account.credentials["secret"]]

    def invalid_rendition(self) -> tuple[Rendition, set[str]]:
        return Rendition(platform=PLATFORM, title=""), {"webhook.title_missing"}

    def stop(self) -> None:
        self.client.close()
        self.control.close()
        self.server.stop()


def start() -> WebhookHarness:
    return WebhookHarness()
