"""Domain errors with messages an editor understands; the app maps each to an HTTP status.

A message is a literal (the source text, in Chinese) that ``make i18n`` extracts into the
catalog: the error classes are extraction keywords (see the Makefile), so ``Invalid("…")`` needs
no ``N_()``. Values go in as named parameters, never into the literal (no f-strings)::

    raise NotFound("稿件 %(id)s 不存在", id=post_id)

A rule function that hands back a reason (a refusal, a problem) returns a ``Reason``: a ``str``
with the source text, as before, that remembers its template and values; an error made from it
(``raise Invalid(problem)``) is translated all the same, and so is a ``Reason`` given as a value.

``message`` is the text in the source language, for logs, the audit trail and the CLI; the web
boundary (hub.web.app's handler, the pages: ``hub.web.i18n.error_text``) shows
``translate(gettext)`` in the reader's language. tests/unit/test_error_messages.py checks every
call of these classes in hub/.
"""

from __future__ import annotations

from collections.abc import Callable


class Reason(str):
    """A message that rule functions hand back (a refusal, a problem): it is the text in the
    source language, as before, and remembers its template and values, so an error made from it
    is still translated. ``Reason`` is an extraction keyword like the error classes."""

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, **params: object) -> Reason:
        text = super().__new__(cls, _fill(template, params))
        text.template = template
        text.params = params
        return text

    def in_language(self, gettext: Callable[[str], str]) -> str:
        """The text through ``gettext`` (``str.translate`` is something else)."""
        return _fill(gettext(self.template), self.params, gettext)


class HubError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        if isinstance(message, Reason):  # a rule function's reason, with its values
            params = {**message.params, **params}
            message = str(message.template)
        self.template = message
        self.params = params
        self.message = _fill(message, params)
        super().__init__(self.message)
        self.field = field

    def translate(self, gettext: Callable[[str], str]) -> str:
        """The message in another language: the template through ``gettext``, then the values
        (those that are a ``Reason`` translated too)."""
        return _fill(gettext(self.template), self.params, gettext)


def _fill(
    template: str, params: dict[str, object], gettext: Callable[[str], str] | None = None
) -> str:
    if not params:
        return template
    if gettext is not None:
        params = {
            k: v.in_language(gettext) if isinstance(v, Reason) else v for k, v in params.items()
        }
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
