"""Domain errors with messages an editor understands; the app maps each to an HTTP status.

A message is a literal (the source text, mostly Chinese) that ``make i18n`` extracts into the
catalog: the error classes are extraction keywords (see the Makefile), so ``Invalid("…")`` needs
no ``N_()``. Values go in as named parameters, never into the literal (no f-strings)::

    raise NotFound("稿件 %(id)s 不存在", id=post_id)

``message`` is the text in the source language, for logs, the audit trail and the CLI; the web
boundary (hub.web.app's handler, the pages) shows ``translate(gettext)`` in the reader's language.
tests/unit/test_error_messages.py checks every raise site.
"""

from __future__ import annotations

from collections.abc import Callable


class HubError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        self.template = message
        self.params = params
        self.message = _fill(message, params)
        super().__init__(self.message)
        self.field = field

    def translate(self, gettext: Callable[[str], str]) -> str:
        """The message in another language: the template through ``gettext``, then the values."""
        return _fill(gettext(self.template), self.params)


def _fill(template: str, params: dict[str, object]) -> str:
    if not params:
        return template
    try:
        return template % params
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder
        return template


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
