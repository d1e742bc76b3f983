"""``govhub backup FILE`` and ``govhub restore FILE [--force]`` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def backup_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="the archive to write (.zip)")],
) -> None:
    """Back up the embedded SQLite database (online, while the hub runs) and the media folder.

    One ZIP file with a manifest (hub version, migration revision, created at, counts, SHA-256
    of every member). PostgreSQL: use pg_dump -Fc / pg_restore instead (exit 2).
    """
    from hub.backup.service import BackupUsageError, create_backup
    from hub.config import get_settings
    from hub.sqltypes import utcnow

    try:
        manifest = create_backup(settings=get_settings(), target=file, now=utcnow())
    except BackupUsageError as exc:
        raise _fail(str(exc), 2) from None
    counts = manifest.counts
    typer.echo(
        f"backup written to {file}: revision {manifest.revision}, {counts['posts']} posts, "
        f"{counts['deliveries']} deliveries, {counts['audit_log']} audit entries, "
        f"{manifest.media_files} media files"
    )


def restore_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="an archive of `govhub backup`")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="restore over a database or media folder that holds data (they are kept aside "
            "as <name>.before-restore-<time>)",
        ),
    ] = False,
) -> None:
    """Restore a `govhub backup` archive into GOVHUB_DATABASE_URL and GOVHUB_MEDIA_DIR.

    Stop web, worker and beat first. Checks every checksum before changing anything, refuses a
    target that holds data unless --force, then migrates the database to this hub's head.
    """
    from hub.backup.service import BackupUsageError, RestoreRefused, restore_backup
    from hub.config import get_settings
    from hub.sqltypes import utcnow

    try:
        restored = restore_backup(settings=get_settings(), source=file, force=force, now=utcnow())
    except BackupUsageError as exc:
        raise _fail(str(exc), 2) from None
    except RestoreRefused as exc:
        raise _fail(str(exc), 1) from None
    manifest, counts = restored.manifest, restored.manifest.counts
    typer.echo(
        f"restored the backup of {manifest.created_at} into {restored.database} and "
        f"{restored.media_dir}: {counts['posts']} posts, {counts['deliveries']} deliveries, "
        f"{counts['audit_log']} audit entries, {manifest.media_files} media files; "
        f"database migrated from {manifest.revision} to {restored.revision_after}"
    )
    for path in restored.set_aside:
        typer.echo(f"kept aside: {path}")
