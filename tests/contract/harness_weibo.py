"""Weibo harness: WeiboConnector against WeiboSandbox over real HTTP (faults over HTTP too)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx

from connectors.base import Account, Content, CopyRef, Rendition
from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.sandbox.server import serve
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig
from connectors.weibo import WeiboConnector
from tests.contract.harness import ErrorCase, sample_content

PLATFORM = "weibo"
CAPABILITIES = frozenset({"recent", "drop"})
PUBLIC_BASE_URL = "http://hall.test"
APP_KEY = "contract-app"
APP_SECRET = "contract-app-secret-5f2a"
ACTING_IP = "203.0.113.7"
BEIJING = ZoneInfo("Asia/Shanghai")  # the person on whose behalf the harness posts (share's rip)

_CODES: dict[type, tuple[str, ...]] = {
    Transient: ("10001", "10002", "10003", "10009", "10010", "10011", "20016"),
    RateLimited: ("10022", "10023", "10024"),
    Unconfirmed: ("20017", "20019", "20111"),
    Rejected: ("20005", "20006", "20008", "20012", "20018", "20020", "20021", "10017"),
    AuthExpired: ("21315", "21316", "21317", "21319", "21327", "21332"),
    AccountBlocked: ("21321", "20031", "10006", "10014", "21323", "21324"),
}
ERROR_CASES = [
    ErrorCase(code, expected) for expected, codes in _CODES.items() for code in codes
] + [
    ErrorCase("21327", AuthExpired, "withdraw"),
    ErrorCase("10001", Transient, "withdraw"),
    ErrorCase("21332", AuthExpired, "recent"),
    ErrorCase("10023", RateLimited, "recent"),
    ErrorCase("10001", Transient, "metrics"),
    ErrorCase("10023", RateLimited, "metrics"),
    ErrorCase("21327", AuthExpired, "metrics"),
]
_ENDPOINTS = {
    "publish": "share",
    "withdraw": "destroy",
    "recent": "user_timeline",
    "metrics": "count",
}


class WeiboHarness:
    platform = PLATFORM

    def __init__(self) -> None:
        self.sandbox = WeiboSandbox(
            WeiboSandboxConfig(app_key=APP_KEY, app_secret=APP_SECRET, safe_domains=("hall.test",))
        )
        self.server = serve(self.sandbox)
        self.client = httpx.Client()
        self.control = httpx.Client(base_url=f"{self.server.base_url}/_sandbox")
        self.connector = WeiboConnector(
            self.client,
            api_base=self.server.base_url,
            public_base_url=PUBLIC_BASE_URL,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            timeout=httpx.Timeout(5.0),
            connect_attempts=2,
        )

    # capability hooks (test_contract.py: Comments)
    def comment_on(self, account: Account, remote_id: str, text: str) -> None:
        self.sandbox.add_comment(remote_id, text)

    def replies(self, comment_id: str) -> list[str]:
        return [c.text for c in self.sandbox.replies_to(comment_id)]

    # capability hooks (test_contract.py: Metrics)
    def reader_counts(self, account: Account, copy: CopyRef) -> tuple[date, dict[str, int]]:
        """Readers repost, comment and like the status; Weibo counts live: ask for today."""
        counts = {"status_id": copy.remote_id, "reposts": 3, "comments": 2, "attitudes": 11}
        self.control.post("/counts", json=counts).raise_for_status()
        self.sandbox.add_comment(copy.remote_id, "转发支持")
        return datetime.now(BEIJING).date(), {"reposts": 3, "comments": 3, "likes": 11}

    def new_account(self) -> Account:
        minted = self.control.post("/tokens", json={}).raise_for_status().json()
        uid = minted["uid"]
        return Account(
            id=int(uid),
            platform=PLATFORM,
            handle=uid,
            name=f"微博账号{uid}",
            credentials={"access_token": minted["access_token"]},
            extra={"uid": uid, "rip": ACTING_IP},
        )

    def content(self) -> Content:
        return sample_content(PUBLIC_BASE_URL)

    def stored_ids(self, account: Account) -> list[str]:
        posts = self.control.get(f"/users/{account.handle}/posts").raise_for_status().json()
        return [str(post["id"]) for post in posts["posts"]]

    def inject(self, case: ErrorCase, account: Account) -> None:
        fault = {"endpoint": _ENDPOINTS[case.operation], "code": int(case.name), "times": 1}
        self.control.post("/faults", json=fault).raise_for_status()

    def inject_drop(self) -> None:
        self.control.post("/faults", json={"endpoint": "share", "drop": True}).raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete("/faults").raise_for_status()
        self.control.post("/latency", json={"endpoint": "*", "ms": 0}).raise_for_status()

    def secrets(self, account: Account) -> list[str]:
        return [account.credentials["access_token"], APP_SECRET]

    def invalid_rendition(self) -> tuple[Rendition, set[str]]:
        text = "很长的微博正文" * 30 + " #话题# 没有安全域名链接 https://elsewhere.example/x"
        rendition = Rendition(platform=PLATFORM, text=text, link=f"{PUBLIC_BASE_URL}/posts/1")
        return rendition, {"weibo.too_long", "weibo.missing_link", "weibo.hashtag"}

    def stop(self) -> None:
        self.client.close()
        self.control.close()
        self.server.stop()


def start() -> WeiboHarness:
    return WeiboHarness()
