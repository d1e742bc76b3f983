"""Domain errors with messages an editor understands; the app maps each to an HTTP status."""

from __future__ import annotations


class HubError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(HubError):
    status_code = 422


class NotFound(HubError):
    status_code = 404


class Forbidden(HubError):
    status_code = 403


class Conflict(HubError):
    status_code = 409


class TooManyAttempts(HubError):
    status_code = 429
