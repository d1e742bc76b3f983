"""What every platform harness provides to the contract suite (one module per platform)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from connectors.base import Account, Connector, Content, Rendition
from connectors.errors import ConnectorError

_serial = itertools.count(1)


@dataclass(frozen=True)
class ErrorCase:
    """A platform error the harness can provoke, and the class the connector must raise.

    ``operation`` is the connector call that meets the error: publish, withdraw, recent, poll
    or metrics (``fetch_metrics``).
    """

    name: str
    expected: type[ConnectorError]
    operation: str = "publish"


class Harness(Protocol):
    platform: str
    connector: Connector

    def new_account(self) -> Account:
        """A fresh account with valid credentials (tests never share accounts)."""
        ...

    def content(self) -> Content:
        """A post no earlier test has published (platforms refuse duplicate content)."""
        ...

    def stored_ids(self, account: Account) -> list[str]:
        """Remote ids of every post the platform holds for ``account``, as the platform sees it."""
        ...

    def inject(self, case: ErrorCase, account: Account) -> None:
        """Make the next ``case.operation`` call fail with ``case``."""
        ...

    def inject_drop(self) -> None:
        """Make the next publish take effect, then drop the connection without answering."""
        ...

    def clear_faults(self) -> None: ...

    def secrets(self, account: Account) -> list[str]:
        """Values that must never appear in reprs, logs or error messages."""
        ...

    def invalid_rendition(self) -> tuple[Rendition, set[str]]:
        """A rendition the platform would refuse, and the problem codes ``check`` must report."""
        ...

    def stop(self) -> None: ...


def sample_content(link_base: str, *, title: str = "省政府常务会议召开") -> Content:
    """A distinct post each call (platforms refuse duplicate content)."""
    n = next(_serial)
    return Content(
        post_id=n,
        version=1,
        title=f"{title}（{n}）",
        body=f"会议研究部署第{n}项重点工作。\n\n要求各地各部门**狠抓落实**，确保取得实效。",
        link=f"{link_base}/posts/{n}",
        org_name="贵州省人民政府",
    )
