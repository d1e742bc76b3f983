"""``govhub backup`` / ``govhub restore`` for the embedded deployment (SQLite + media folder).

The database is copied with SQLite's online backup API (``sqlite3.Connection.backup``): a
consistent snapshot taken while web, worker and beat keep writing. PostgreSQL deployments use
``pg_dump -Fc`` / ``pg_restore`` instead (docs/operations.md, "Backing up and restoring").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from hub.backup import rules
from hub.backup.rules import Manifest, Member
from hub.config import Settings

CHUNK = 1024 * 1024

POSTGRES_REFUSAL = (
    "PostgreSQL 数据库请用 pg_dump -Fc 备份、pg_restore 恢复，媒体目录另行备份（docs/operations.md）"
    " / govhub backup and restore cover the embedded SQLite database only: use pg_dump -Fc and "
    "pg_restore, and copy the media folder (docs/operations.md, 'Backing up and restoring')"
)


class BackupUsageError(Exception):
    """The command cannot apply here (PostgreSQL, no such file): exit 2."""


class RestoreRefused(Exception):
    """The archive or the target is not fit for a restore; nothing was changed: exit 1."""


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    database: Path
    media_dir: Path
    revision_after: str
    set_aside: tuple[Path, ...]


def hub_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("govhub")
    except PackageNotFoundError:
        return "unknown"


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupUsageError(POSTGRES_REFUSAL)
    if not url.database or url.database == ":memory:":
        raise BackupUsageError("GOVHUB_DATABASE_URL names no database file")
    return Path(url.database)


def _copy_hashing(source: IO[bytes], target: IO[bytes], *, limit: int | None = None) -> Member:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            break  # larger than the manifest says: no need to read the rest
        digest.update(chunk)
        target.write(chunk)
    return Member(name="", size=size, sha256=digest.hexdigest())


def _add(archive: zipfile.ZipFile, name: str, path: Path) -> Member:
    info = zipfile.ZipInfo.from_file(path, arcname=name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
        copied = _copy_hashing(source, target)
    return Member(name=name, size=copied.size, sha256=copied.sha256)


def _derived(relative: Path) -> bool:
    """Image variants (``media/variants``, docs/delivery.md) are made again on demand: not backed
    up (and a variant being renamed into place must not fail the backup)."""
    return relative.parts[:1] == ("variants",)


def _media_files(media_dir: Path) -> list[tuple[str, Path]]:
    if not media_dir.is_dir():
        return []
    files = [
        p
        for p in media_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and not _derived(p.relative_to(media_dir))
    ]
    return sorted((rules.MEDIA_PREFIX + p.relative_to(media_dir).as_posix(), p) for p in files)


def _revision(connection: sqlite3.Connection) -> str:
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError:
        return ""
    return ",".join(sorted(str(r[0]) for r in rows))


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    return {
        table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        for table in rules.COUNTED_TABLES
    }


def create_backup(*, settings: Settings, target: Path, now: datetime) -> Manifest:
    """Write one archive with a snapshot of the database and the media folder to ``target``.

    It is written next to ``target`` first and renamed when complete, so a failed run never
    leaves a half archive under the expected name (nor replaces the previous one).
    """
    database = sqlite_path(settings.database_url)
    if not database.is_file():
        raise BackupUsageError(f"no database at {database} (GOVHUB_DATABASE_URL)")
    if not target.parent.is_dir():
        raise BackupUsageError(f"{target.parent}: no such directory")
    media_dir = Path(settings.media_dir).resolve()
    if target.parent.resolve().is_relative_to(media_dir):
        raise BackupUsageError(f"{target}: write the backup outside the media folder {media_dir}")
    partial = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".govhub-backup-") as work:
        snapshot = Path(work) / rules.DATABASE
        with (
            closing(sqlite3.connect(database, timeout=30)) as source,
            closing(sqlite3.connect(snapshot)) as copy,
        ):
            source.backup(copy)  # pages copied under one read transaction: consistent
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            revision, counts = _revision(copy), _counts(copy)
        if not revision:
            raise BackupUsageError(f"{database} is not a migrated govhub database")
        try:
            with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
                members = [_add(archive, rules.DATABASE, snapshot)]
                members += [
                    _add(archive, name, path)
                    for name, path in _media_files(Path(settings.media_dir))
                ]
                manifest = rules.build_manifest(
                    hub_version=hub_version(),
                    revision=revision,
                    created_at=now,
                    counts=counts,
                    members=members,
                )
                archive.writestr(rules.MANIFEST, manifest.to_json(), zipfile.ZIP_DEFLATED)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return manifest


# -- restore ---------------------------------------------------------------------------------------


def _database_holds_data(database: Path) -> bool:
    if not database.exists() or database.stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(database, timeout=30)) as connection:
            tables = {
                r[0]
                for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            return any(
                connection.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone()[0]
                for t in rules.CONTENT_TABLES
                if t in tables
            )
    except sqlite3.DatabaseError:
        return True  # not a database we can read: treat it as something to keep


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() or p.is_symlink() for p in folder.rglob("*"))


def _unknown_revisions(revision: str) -> list[str]:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from hub.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config(""))
    unknown = []
    for rev in revision.split(","):
        try:
            if scripts.get_revision(rev) is None:
                unknown.append(rev)
        except CommandError:
            unknown.append(rev)
    return unknown


def _read_manifest(archive: zipfile.ZipFile) -> Manifest:
    try:
        data = archive.read(rules.MANIFEST)
    except KeyError:
        raise RestoreRefused("the archive has no manifest.json: not a govhub backup") from None
    try:
        return rules.parse_manifest(data)
    except rules.ManifestError as exc:
        raise RestoreRefused(str(exc)) from None


def _extract_verified(archive: zipfile.ZipFile, manifest: Manifest, staging: Path) -> None:
    problems = []
    for member in manifest.members:
        target = staging / member.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(member.name) as source, target.open("wb") as out:
                copied = _copy_hashing(source, out, limit=member.size)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a CRC error is BadZipFile
            problems.append(f"{member.name}: cannot be read ({exc})")
            continue
        if copied.size != member.size or copied.sha256 != member.sha256:
            problems.append(f"{member.name}: its checksum does not match the manifest")
    if problems:
        raise RestoreRefused("the archive does not match its manifest: " + "; ".join(problems))
    with closing(sqlite3.connect(staging / rules.DATABASE)) as connection:
        try:
            mismatched = rules.count_problems(manifest, _counts(connection))
        except sqlite3.DatabaseError as exc:
            raise RestoreRefused(f"{rules.DATABASE}: not a readable database ({exc})") from None
    if mismatched:
        raise RestoreRefused("the database does not match its manifest: " + "; ".join(mismatched))


def _set_aside(path: Path, stamp: str) -> Path | None:
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}.before-restore-{stamp}")
    shutil.move(path, aside)
    return aside


@contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".govhub-restore-") as work:
        yield Path(work)


def restore_backup(*, settings: Settings, source: Path, force: bool, now: datetime) -> Restored:
    """Check ``source`` completely, then put its database and media files in place and migrate.

    Refuses (changing nothing) an archive that is not a govhub backup, whose members or row
    counts disagree with its manifest, or that comes from a newer govhub; and a target that
    already holds data unless ``force``: then the old database and media are kept aside as
    ``<name>.before-restore-<time>``, never deleted.
    """
    from hub.db import engine_for
    from hub.migrate import current, upgrade

    database = sqlite_path(settings.database_url)
    media_dir = Path(settings.media_dir)
    if not source.is_file():
        raise BackupUsageError(f"{source}: no such file")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise RestoreRefused(f"{source}: not a govhub backup archive ({exc})") from None
    with archive:
        manifest = _read_manifest(archive)
        problems = rules.listing_problems(manifest, archive.namelist())
        if problems:
            raise RestoreRefused("the archive does not match its manifest: " + "; ".join(problems))
        unknown = _unknown_revisions(manifest.revision)
        if unknown:
            raise RestoreRefused(
                f"the backup's database is at revision {', '.join(unknown)}, which this govhub "
                f"({hub_version()}) does not know: restore it with the same or a newer govhub"
            )
        occupied = []
        if _database_holds_data(database):
            occupied.append(f"the database {database} holds data")
        if _has_files(media_dir):
            occupied.append(f"the media folder {media_dir} holds files")
        if occupied and not force:
            raise RestoreRefused(
                "; ".join(occupied) + ": nothing restored. Restore into an empty database and "
                "media folder, or add --force to set the current ones aside and restore"
            )
        with _staging(database.parent) as staging:
            _extract_verified(archive, manifest, staging)
            engine_for(settings.database_url).dispose()  # no pooled handle on the old file
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            aside = [
                _set_aside(p, stamp)
                for p in (
                    database,
                    *(database.with_name(database.name + s) for s in ("-wal", "-shm")),
                )
            ]
            aside.append(_set_aside(media_dir, stamp) if _has_files(media_dir) else None)
            os.replace(staging / rules.DATABASE, database)
            media_dir.mkdir(parents=True, exist_ok=True)
            staged_media = staging / rules.MEDIA_PREFIX
            if staged_media.is_dir():
                for entry in sorted(staged_media.iterdir()):
                    destination = media_dir / entry.name
                    if destination.is_dir() and entry.is_dir():
                        shutil.copytree(entry, destination, dirs_exist_ok=True)
                    else:
                        shutil.move(entry, destination)
    upgrade(settings.database_url)  # an older backup in a newer hub: migrate to this hub's head
    return Restored(
        manifest=manifest,
        database=database,
        media_dir=media_dir,
        revision_after=current(settings.database_url) or "",
        set_aside=tuple(p for p in aside if p is not None),
    )
