"""Who acts: the one actor type every service takes and every audit entry names.

Either a signed-in user with their reach (:class:`~hub.users.rules.Actor`) and the address they
called from, or the system (a worker, the inbox's ingestion, a command), named for the audit log.
Routes get it from the request with :data:`hub.web.deps.WhoDep`.
"""

from __future__ import annotations

from hub.users.models import User
from hub.users.rules import Actor

SYSTEM = "system"


class Who:
    """A user acting (``Who(user, actor, client_ip)``), or the system (``Who(system="inbox")``)."""

    __slots__ = ("_actor", "_client_ip", "_system", "_user")

    def __init__(
        self,
        user: User | None = None,
        actor: Actor | None = None,
        client_ip: str = "",
        *,
        system: str = SYSTEM,
    ) -> None:
        if (user is None) != (actor is None):
            raise ValueError("a user acts with their reach (actor); the system with neither")
        self._user = user
        self._actor = actor
        self._client_ip = client_ip
        self._system = system

    @property
    def client_ip(self) -> str:
        """The address the user called from ("" for the system, "cli" for a command)."""
        return self._client_ip

    @property
    def system(self) -> str:
        """The name recorded when no user acts: "system", "inbox", "cli" ..."""
        return self._system

    @property
    def is_user(self) -> bool:
        return self._user is not None

    @property
    def user(self) -> User:
        """The acting user; asking for it when the system acts is a programming error."""
        if self._user is None:
            raise LookupError(f"{self.system} acts here, not a user")
        return self._user

    @property
    def actor(self) -> Actor:
        """The acting user's role and reach, as :func:`hub.users.rules.may` takes them."""
        if self._actor is None:
            raise LookupError(f"{self.system} acts here, not a user")
        return self._actor

    @property
    def id(self) -> int:
        """The acting user's id (a user who acts is stored, so it has one)."""
        user_id = self.user.id
        assert user_id is not None
        return user_id

    @property
    def user_id(self) -> int | None:
        """The acting user's id, ``None`` when the system acts (as the audit log stores it)."""
        return self._user.id if self._user is not None else None

    @property
    def name(self) -> str:
        """The name the audit log and case histories show: the username, or the system's name."""
        return self._user.username if self._user is not None else self.system

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Who) and (self.user_id, self.name, self.client_ip) == (
            other.user_id,
            other.name,
            other.client_ip,
        )

    def __hash__(self) -> int:
        return hash((self.user_id, self.name, self.client_ip))

    def __repr__(self) -> str:
        return f"Who({self.name!r}, client_ip={self.client_ip!r})"


SYSTEM_WHO = Who()
"""The system acting (a worker, a sweep): recorded as "system"."""
