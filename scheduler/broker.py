"""The embedded broker: kombu's SQLAlchemy transport, polled every 100 ms instead of every second.

kombu passes every transport option of this transport to ``create_engine``, so its polling
interval cannot be set through ``broker_transport_options``; a subclass registered under its own
alias carries it as class data. ``GOVHUB_BROKER_URL=sqla+sqlite:///...`` is mapped onto it.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

ALIAS = "govhub-sqla"
POLLING_INTERVAL = 0.1


class Transport(SQLAlchemyTransport):
    polling_interval = POLLING_INTERVAL


def register() -> None:
    TRANSPORT_ALIASES.setdefault(ALIAS, "scheduler.broker:Transport")


def embedded_url(url: str) -> str:
    """``sqla+sqlite:///x`` -> ``govhub-sqla+sqlite:///x`` (other URLs unchanged)."""
    if url.startswith("sqla+"):
        register()
        return ALIAS + url.removeprefix("sqla")
    return url
