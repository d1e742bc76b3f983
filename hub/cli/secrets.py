"""Secrets at rest: ``govhub secrets ...``."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import checked_settings, fail
from hub.config import get_settings

secrets_app = typer.Typer(help="Secrets at rest (GOVHUB_CREDENTIALS_KEY).", no_args_is_help=True)


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new Fernet key for GOVHUB_CREDENTIALS_KEY."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@secrets_app.command("rotate")
def secrets_rotate(
    dry_run: Annotated[bool, typer.Option(help="only check that every value decrypts")] = False,
) -> None:
    """Re-encrypt every encrypted column under the first key of GOVHUB_CREDENTIALS_KEY.

    Set GOVHUB_CREDENTIALS_KEY="NEW,OLD" (new key first) for every process, run this, then drop
    OLD. All or nothing: if any value opens with none of the keys, nothing is changed (exit 1).
    """
    from hub.db import session_scope
    from hub.keyrotation import rotate_all
    from hub.security import credential_keys
    from hub.tables import metadata

    checked_settings()
    key = get_settings().credentials_key
    with session_scope() as session:
        report = rotate_all(session=session, key=key, metadata=metadata, dry_run=dry_run)
        if report.unreadable:
            session.rollback()
    for name, count in report.rotated.items():
        typer.echo(f"{name}: {count} value(s){' readable' if dry_run else ' re-encrypted'}")
    if report.unreadable:
        for where in report.unreadable:
            typer.echo(f"cannot decrypt: {where}", err=True)
        raise fail(
            f"{len(report.unreadable)} value(s) open with none of the "
            f"{len(credential_keys(key))} key(s) in GOVHUB_CREDENTIALS_KEY; nothing was changed "
            "(add the key they were written with, after the new one)"
        )
    verb = "can be re-encrypted" if dry_run else "re-encrypted with the first key"
    typer.echo(f"{report.total} value(s) {verb}")
