"""Release-hall harness: HallConnector over the in-memory HallStore (no network involved)."""

from __future__ import annotations

import itertools

from connectors.base import Account, Content, Rendition
from connectors.errors import Rejected
from connectors.hall import HallConnector, MemoryHallStore
from tests.contract.harness import ErrorCase, sample_content

PLATFORM = "hall"
CAPABILITIES = frozenset({"recent"})
PUBLIC_BASE_URL = "http://hall.test"
ERROR_CASES = [ErrorCase("unknown-entry", Rejected, "poll")]

_accounts = itertools.count(1)


class HallHarness:
    platform = PLATFORM

    def __init__(self) -> None:
        self.store = MemoryHallStore(PUBLIC_BASE_URL)
        self.connector = HallConnector(self.store, public_base_url=PUBLIC_BASE_URL)

    def new_account(self) -> Account:
        n = next(_accounts)
        # The hall needs no credentials; one is set so the secrecy contract has something to check.
        return Account(n, PLATFORM, f"hall-{n}", credentials={"note": f"hall-private-{n}-x9"})

    def content(self) -> Content:
        return sample_content(PUBLIC_BASE_URL)

    def stored_ids(self, account: Account) -> list[str]:
        return [entry.entry_id for entry in self.store.recent(account.id)]

    def inject(self, case: ErrorCase, account: Account) -> None:
        """Nothing to inject: the only error is polling an entry that does not exist."""

    def inject_drop(self) -> None:
        raise NotImplementedError("the hall is in-process: no connection to drop")

    def clear_faults(self) -> None:
        pass

    def secrets(self, account: Account) -> list[str]:
        return list(account.credentials.values())

    def invalid_rendition(self) -> tuple[Rendition, set[str]]:
        return Rendition(platform=PLATFORM, title="  ", text=""), {
            "hall.title_missing",
            "hall.empty",
        }

    def stop(self) -> None:
        pass


def start() -> HallHarness:
    return HallHarness()
