"""The Redis broker restarted in the middle of a fan-out: nothing lost, nothing duplicated."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from connectors.sandbox.server import free_port
from hub.config import get_settings
from tests.engine.conftest import Matrix, Process, counties, wait_for
from tests.engine.test_fanout import assert_one_copy_each, publish_post

pytestmark = pytest.mark.integration


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port (the machine's stays untouched)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (Debian package redis-server)"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, 20, "private redis answers")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_broker_restarted_mid_fanout_loses_and_duplicates_nothing(
    matrix: Matrix,
    processes: Callable[..., Process],
    hub_env: dict[str, str],
    private_redis: PrivateRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduler.app import get_celery

    monkeypatch.setenv("GOVHUB_BROKER_URL", private_redis.url)
    monkeypatch.setenv("GOVHUB_REDIS_URL", private_redis.url)
    get_settings.cache_clear()
    get_celery.cache_clear()
    accounts = matrix.add_accounts(counties(matrix.database_url, 30), ("weibo", "wechat"))
    matrix.platforms.weibo.set_latency("share", 300)
    processes("worker", "--concurrency", "8")
    processes("beat")
    post_id, title = publish_post(matrix, accounts, Path(hub_env["GOVHUB_MEDIA_DIR"]))
    wait_for(lambda: matrix.statuses(post_id).get("published", 0) >= 5, 120, "5 published")

    private_redis.kill()  # the broker and every message in it are gone
    assert matrix.statuses(post_id).get("published", 0) < 60
    private_redis.start()

    matrix.wait_published(post_id, 60, 240)
    matrix.platforms.weibo.set_latency("share", 0)
    assert_one_copy_each(matrix, accounts, post_id, title)
