"""Platform access tokens kept fetched ahead of use (WeChat's ``stable_token``).

WeChat's documentation asks for one place that fetches the token, caches it for every worker and
refreshes it ahead of expiry (a 中控 server). The connector already shares it through the token
store (Redis, else the database) and keeps it until its expiry minus a margin; this is the
"ahead" part: beat's ``accounts.keep_tokens`` (every five minutes) asks each active account whose
connector has the ``KeepsTokens`` capability to fetch its token when the store holds none that is
still good. A fan-out's copies then find it cached and go straight to their uploads and draft:
before, the first copy to each new or idle account fetched it on the way (one round trip more on
the copy's path, a stable_token call inside the fan-out).

A wrong AppSecret found here flags the account ``misconfigured`` as a publication would, so the
editor sees 账号待处理 before publishing to it, not after; other failures (the platform busy, the
network) are only logged: the publication fetches the token itself as it always did.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from connectors.base import KeepsTokens
from connectors.errors import AccountBlocked, ConnectorError
from hub.accounts.models import Account, AccountStatus
from hub.config import Settings
from hub.platforms import Platform
from hub.security import CredentialsError

log = logging.getLogger(__name__)

THREADS = 8  # token calls side by side (a pass over 1,000 new accounts: ~13 s at 100 ms each)


@dataclass
class KeptTokens:
    fetched: list[int] = field(default_factory=list)  # account ids whose token was fetched now
    good: list[int] = field(default_factory=list)  # ... whose cached token is still good
    failed: dict[int, str] = field(default_factory=dict)  # ... and why not
    flagged: list[int] = field(default_factory=list)  # wrong credentials: now misconfigured

    def summary(self) -> str:
        return (
            f"{len(self.fetched)} fetched, {len(self.good)} still good, "
            f"{len(self.failed)} failed, {len(self.flagged)} flagged"
        )


def keeping_platforms(settings: Settings) -> list[Platform]:
    """The platforms whose connector keeps a token (``KeepsTokens``)."""
    from hub.delivery import channels
    from hub.platforms import platforms

    return [
        p for p in platforms() if isinstance(channels.connector_for(p.value, settings), KeepsTokens)
    ]


def keep_tokens(*, session: Session, settings: Settings, now: datetime) -> KeptTokens:
    """One pass over the active accounts of the keeping platforms."""
    from hub.accounts.health import flag_blocked
    from hub.delivery import channels

    result = KeptTokens()
    names = keeping_platforms(settings)
    if not names:
        return result
    query = select(Account).where(
        Account.status == AccountStatus.active, col(Account.platform).in_(names)
    )
    accounts = list(session.exec(query.order_by(col(Account.id))).all())

    def keep(account: Account) -> tuple[int, bool | Exception]:
        connector = channels.connector_for(account.platform.value, settings)
        assert isinstance(connector, KeepsTokens)
        try:
            return account.id or 0, connector.keep_token(
                channels.connector_account(account, settings)
            )
        except (ConnectorError, CredentialsError) as exc:
            return account.id or 0, exc

    with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="keep-token") as pool:
        outcomes = dict(pool.map(keep, accounts))
    for account in accounts:
        outcome = outcomes[account.id or 0]
        if outcome is True:
            result.fetched.append(account.id or 0)
        elif outcome is False:
            result.good.append(account.id or 0)
        else:
            result.failed[account.id or 0] = str(outcome)
            log.warning("account %s: token not kept: %s", account.id, outcome)
            if isinstance(outcome, AccountBlocked):
                flag_blocked(session, account, outcome, settings, now)
                result.flagged.append(account.id or 0)
    session.commit()
    return result
