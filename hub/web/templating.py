"""Jinja2 environment for pages (templates/pages, templates/partials), with gettext (hub/web/i18n)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from fastapi.templating import Jinja2Templates

from connectors.markup import TEMPLATES_DIR
from hub.config import get_settings
from hub.users.models import User
from hub.users.rules import Action, Actor, may
from hub.web import i18n


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a stored UTC time in GOVHUB_TIMEZONE."""
    if value is None:
        return ""
    return value.astimezone(get_settings().tz).strftime(fmt)


def nav_for(user: User | None) -> dict[str, bool]:
    """Which navigation entries a user's role gets (the one rule, with no particular org)."""
    if user is None:
        return {}
    actor = Actor(user_id=user.id or 0, role=user.role, org_path="/")
    return {
        "compose": may(actor, Action.post_write),
        "review": may(actor, Action.post_review) or may(actor, Action.post_cosign),
        "posts": may(actor, Action.post_write) or may(actor, Action.post_review),
        # 媒体库: who uploads images (editors, live runners) and admins (default covers)
        "media": may(actor, Action.post_write)
        or may(actor, Action.live_run)
        or may(actor, Action.org_manage),
        "audit_log": may(actor, Action.audit_log_read),
        "users": may(actor, Action.user_manage),
        "orgs": may(actor, Action.org_manage),
        "supervise": may(actor, Action.matrix_audit),
        "inbox": may(actor, Action.case_read),
        "clocks": may(actor, Action.clock_read),
    }


def platform_capabilities(platform: str) -> tuple[str, ...]:
    """The optional capabilities (``connectors.base.CAPABILITIES``) of the platform's connector."""
    from connectors.base import capabilities_of
    from hub.delivery.channels import connector_for

    return capabilities_of(connector_for(platform))


@lru_cache
def get_templates() -> Jinja2Templates:
    templates = Jinja2Templates(
        directory=str(TEMPLATES_DIR), context_processors=[i18n.template_context]
    )
    templates.env.add_extension("jinja2.ext.i18n")
    templates.env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n._, ngettext=i18n.ngettext, newstyle=True
    )
    templates.env.filters["local_time"] = local_time
    templates.env.globals["nav_for"] = nav_for
    # platform labels from the connectors (PlatformInfo), in the page's language
    templates.env.globals["platform_label"] = i18n.platform_label
    templates.env.globals["platform_choices"] = i18n.platform_choices
    templates.env.globals["platform_capabilities"] = platform_capabilities
    return templates
