"""Image variants: a press photo's WeChat thumb is made once for every account, thread and
process, and every account gets the same bytes (connectors/variants.py)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from connectors.base import Account
from connectors.sandbox.server import RunningServer
from connectors.sandbox.wechat import WechatSandbox
from connectors.tokens import MemoryTokenStore
from connectors.variants import FileVariants, NoVariants, VariantStore, digest_of
from connectors.wechat import WechatConnector, jpeg_within
from tests.contract.harness_wechat import WechatHarness, wait_for, wechat_server
from tests.images import press_photo

__all__ = ["wechat_server"]  # fixtures used by this module

ACCOUNTS = 6


@pytest.fixture
def photo() -> bytes:
    data = press_photo()
    assert 200 * 1024 < len(data) < 1_000_000  # in the body as it is; the thumb is converted
    return data


def harnesses(
    server: tuple[WechatSandbox, RunningServer], client: httpx.Client, tmp_path: Path
) -> list[WechatHarness]:
    sandbox, running = server
    return [WechatHarness(sandbox, running.base_url, client, tmp_path) for _ in range(ACCOUNTS)]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as http:
        yield http


def connector(harness: WechatHarness, variants: VariantStore) -> WechatConnector:
    return WechatConnector(
        harness.client,
        api_base=harness.base_url,
        public_base_url="http://hall.test",
        token_store=MemoryTokenStore(),
        variants=variants,
    )


def publish_everywhere(
    accounts: list[WechatHarness], connectors: list[WechatConnector], photo: bytes
) -> None:
    """Every account publishes the same post at once, one thread each (as a fan-out does)."""
    content = accounts[0].content(images=(accounts[0].cover(photo, "press.jpg"),))
    barrier = threading.Barrier(len(accounts))

    def one(pair: tuple[WechatHarness, WechatConnector]) -> None:
        harness, wechat = pair
        account: Account = harness.account()
        rendition = wechat.render(content)
        barrier.wait()
        pending = wechat.publish(account, rendition, idempotency_key=harness.appid)
        assert not isinstance(pending, str)
        wait_for(lambda: wechat.poll(account, pending.ref).__class__.__name__ == "Published")

    with ThreadPoolExecutor(len(accounts)) as pool:
        list(pool.map(one, zip(accounts, connectors, strict=True)))


def thumbs_sent(sandbox: WechatSandbox, accounts: list[WechatHarness]) -> list[bytes]:
    return [data for harness in accounts for data in sandbox._apps[harness.appid].thumbs.values()]


def test_a_press_photo_is_converted_once_for_every_account(
    wechat_server: tuple[WechatSandbox, RunningServer],
    client: httpx.Client,
    tmp_path: Path,
    photo: bytes,
) -> None:
    store = FileVariants(tmp_path / "media" / "variants")
    accounts = harnesses(wechat_server, client, tmp_path)
    # one connector per account, as if each were in a worker process of its own (same folder)
    publish_everywhere(accounts, [connector(h, store) for h in accounts], photo)

    assert store.produced == 1  # one decode, resize and encode for six accounts
    thumbs = thumbs_sent(wechat_server[0], accounts)
    assert len(thumbs) == ACCOUNTS  # the upload stays per account: media ids are the account's
    assert len(set(thumbs)) == 1  # ... and every account was sent the same bytes
    kept = store.path(digest_of(photo), "wechat-thumb-65536.jpg")
    assert kept.read_bytes() == thumbs[0] and len(thumbs[0]) <= 64 * 1024

    # a later publication (a restarted worker: a new store on the same folder) converts nothing
    again = FileVariants(tmp_path / "media" / "variants")
    later = harnesses(wechat_server, client, tmp_path)[:2]
    publish_everywhere(later, [connector(h, again) for h in later], photo)
    assert again.produced == 0
    assert set(thumbs_sent(wechat_server[0], later)) == set(thumbs)


def test_without_the_store_every_account_converts(
    wechat_server: tuple[WechatSandbox, RunningServer],
    client: httpx.Client,
    tmp_path: Path,
    photo: bytes,
) -> None:
    """The baseline the benchmark compares with (GOVHUB_IMAGE_VARIANTS=off)."""
    store = NoVariants()
    accounts = harnesses(wechat_server, client, tmp_path)[:3]
    publish_everywhere(accounts, [connector(h, store) for h in accounts], photo)
    assert store.produced == 3


def _produce_in_process(root: str, photo: bytes, log: str, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    store = FileVariants(root)

    def produce() -> bytes:
        with open(log, "a") as handle:  # one line per conversion, whichever process made it
            handle.write("x\n")
        return jpeg_within(photo, 64 * 1024, max_side=900)

    data = store.variant(digest_of(photo), "wechat-thumb-65536.jpg", produce)
    assert len(data) <= 64 * 1024


def test_concurrent_processes_produce_a_variant_once(tmp_path: Path, photo: bytes) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    log = tmp_path / "conversions.log"
    root = tmp_path / "variants"
    workers = [
        context.Process(target=_produce_in_process, args=(str(root), photo, str(log), start))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert log.read_text().count("x") == 1
    [kept] = [p for p in root.iterdir() if not p.name.startswith(".")]
    assert kept.name == f"{digest_of(photo)}-wechat-thumb-65536.jpg"
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]  # renamed into place


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    store = FileVariants(tmp_path)

    def broken() -> bytes:
        raise ValueError("not a picture")

    with pytest.raises(ValueError):
        store.variant("0" * 64, "wechat-thumb-65536.jpg", broken)
    assert store.variant("0" * 64, "wechat-thumb-65536.jpg", lambda: b"made") == b"made"
    assert store.produced == 1


def test_variant_names_cannot_leave_the_folder(tmp_path: Path) -> None:
    store = FileVariants(tmp_path)
    for digest, spec in (("../" + "0" * 61, "x.jpg"), ("0" * 64, "../../etc/passwd")):
        with pytest.raises(ValueError):
            store.variant(digest, spec, lambda: b"")
