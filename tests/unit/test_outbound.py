"""The SSRF guard for outbound URLs (connectors.outbound): wrapped IPv4 forms, and pinning."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from connectors.base import Account, Rendition
from connectors.errors import Misconfigured
from connectors.outbound import (
    Target,
    UnsafeTarget,
    check_target,
    is_public_address,
    pinned_request,
)
from connectors.webhook import WebhookConnector


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254 (cloud metadata)
        ("2002:c0a8:101::", False),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::ffff:169.254.169.254", False),
        ("100.100.100.200", False),  # Alibaba Cloud metadata (shared address space)
        ("2002:808:808::", True),  # 6to4 of 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("8.8.8.8", True),
        ("2400:3200::1", True),
    ],
)
def test_wrapped_ipv4_addresses_are_judged_by_the_ipv4_inside(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_urls_with_credentials_or_other_schemes_are_refused() -> None:
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    for url in ("ftp://partner.example/", "http://user:pw@partner.example/", "http:///x"):
        with pytest.raises(UnsafeTarget):
            check_target(url, allow_private=False, resolver=public)


class Rebinding:
    """A DNS that answers a public address first and loopback afterwards (DNS rebinding)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return ["93.184.216.34"] if self.calls == 1 else ["127.0.0.1"]


def test_the_webhook_connects_to_the_address_that_was_checked() -> None:
    seen: list[httpx.Request] = []

    def partner(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x"})

    dns = Rebinding()
    connector = WebhookConnector(
        httpx.Client(transport=httpx.MockTransport(partner)), allow_private=False, resolver=dns
    )
    account = Account(
        1,
        "webhook",
        "partner",
        credentials={"url": "https://partner.example:8443/hook?a=1", "secret": "s"},
    )
    connector.publish(account, Rendition(platform="webhook", title="t"), idempotency_key="k")
    assert dns.calls == 1  # resolved once: the connection did not ask again
    (request,) = seen
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.path == "/hook" and request.url.query == b"a=1"
    assert request.headers["host"] == "partner.example:8443"
    assert request.extensions["sni_hostname"] == "partner.example"
    with pytest.raises(Misconfigured):  # the second answer is loopback: refused
        connector.publish(account, Rendition(platform="webhook", title="t"), idempotency_key="k")
    assert len(seen) == 1


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hosts.append(self.headers["Host"])
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_pinned_request_goes_to_the_ip_with_the_original_host_header(
    local_server: tuple[int, list[str]],
) -> None:
    port, hosts = local_server
    target = Target(
        url=f"http://partner.invalid:{port}/hook",
        scheme="http",
        host="partner.invalid",  # does not resolve: only the pinned address can be reached
        port=port,
        address="127.0.0.1",
    )
    with httpx.Client() as client:
        answer = pinned_request(client, "POST", target, content=b"{}")
    assert answer.status_code == 204
    assert hosts == [f"partner.invalid:{port}"]
