"""The connector error tree. The delivery engine decides what to do from the class alone.

::

    ConnectorError                  something went wrong talking to a platform
    ├── Transient(retry_after)      network trouble, "system busy": try again after a pause
    ├── RateLimited(until)          a platform window is full: try again when it opens
    │   └── QuotaExhausted(until)   a daily/monthly quota is spent: park until it renews
    ├── AuthExpired                 the account's token is expired or revoked: re-authorise
    ├── Rejected(reason)            the platform refused this content or call: never retry
    │   └── Misconfigured           app key, IP whitelist, wrong secret: the operator must act
    │       ├── AccountBlocked      the account's setup stops every send: park, flag, heal
    │       └── CapabilityUnavailable(capability)  one API (comments) is not allowed: switch off
    └── Unconfirmed                 the request may or may not have taken effect: look first

Every error carries the platform's own code and message (``code``, ``platform_message``) and the
HTTP status, so an editor can be shown the platform's words. Messages never contain secrets.
"""

from __future__ import annotations

from datetime import datetime


class ConnectorError(Exception):
    """Base class: a failed platform call."""

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        code: str | None = None,
        platform_message: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.code = code
        self.platform_message = platform_message
        self.http_status = http_status

    def __str__(self) -> str:
        if self.code:
            return f"{self.message} (platform code {self.code})"
        return self.message


class Transient(ConnectorError):
    """Temporary failure; safe to retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float = 5.0, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RateLimited(ConnectorError):
    """A platform rate window is full; retry at ``until`` (UTC)."""

    def __init__(self, message: str, *, until: datetime, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.until = until


class QuotaExhausted(RateLimited):
    """A daily or monthly quota is used up; deliveries park until ``until``."""


class AuthExpired(ConnectorError):
    """The account's credentials are expired, revoked or invalid; it needs re-authorisation."""


class Rejected(ConnectorError):
    """The platform refused the call for a reason retrying cannot fix."""

    @property
    def reason(self) -> str:
        return self.platform_message or self.message


class Misconfigured(Rejected):
    """Operator error: app key, permissions, IP whitelist, wrong app secret."""


class AccountBlocked(Misconfigured):
    """The account's own setup on the platform stops every send until the operator acts.

    WeChat 40164 (IP not whitelisted), 48001/48004 (API unauthorised/banned); Weibo 21321 (app
    not audited, account not a tester), 20031 (captcha to pass). Nothing is wrong with the
    content: deliveries park, the account is flagged with the message (what to do), and they
    resume once the account's connection test passes again.
    """


class CapabilityUnavailable(Misconfigured):
    """The app may not use one capability (``capability``, e.g. ``"comments"``) for the account.

    Weibo 10014 on the comment APIs. The account shows it; nobody retries it in a loop.
    """

    def __init__(self, message: str, *, capability: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.capability = capability


class Unconfirmed(ConnectorError):
    """The outcome is unknown (timeout after sending, duplicate-content codes).

    Never re-send blindly: look at the account's recent posts first (or, when ``lookup_ref`` is
    set, with the connector's ``Reconciles.find_publication``). ``resend_if_absent`` is
    False when the platform refused the content as a duplicate: if our post is not there, the
    duplicate is someone else's post and sending again would only be refused again.
    """

    def __init__(
        self, message: str, *, resend_if_absent: bool = True, lookup_ref: str = "", **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.resend_if_absent = resend_if_absent
        # What the hub keeps to find the copy again (WeChat: the draft's media_id); when set,
        # the connector implements ``Reconciles`` and the engine looks with it, never re-sends.
        self.lookup_ref = lookup_ref
