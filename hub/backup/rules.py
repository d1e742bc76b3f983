"""What a backup archive (备份文件) holds and how it is checked: pure functions, no I/O.

The archive is a ZIP file::

    manifest.json        format, hub version, migration revision, created at, row counts and,
                         for every other member, its size and SHA-256
    database.sqlite3     an online snapshot of the embedded SQLite database
    media/...            every file of GOVHUB_MEDIA_DIR (uploaded images), same relative paths

The checksums catch a damaged or altered archive; they do not stop someone who rewrites the
manifest as well, so keep backups where only the operators can write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

FORMAT = "govhub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database.sqlite3"
MEDIA_PREFIX = "media/"
COUNTED_TABLES = ("posts", "deliveries", "audit_log")
# A database holding a row in any of these has been used: restoring over it needs --force.
CONTENT_TABLES = ("orgs", "users", "accounts", "posts", "deliveries", "audit_log")


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    hub_version: str
    revision: str
    created_at: str
    counts: dict[str, int]
    members: tuple[Member, ...]

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "hub_version": self.hub_version,
            "migration_revision": self.revision,
            "created_at": self.created_at,
            "counts": dict(self.counts),
            "members": {m.name: {"size": m.size, "sha256": m.sha256} for m in self.members},
        }
        return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True).encode()

    @property
    def media_files(self) -> int:
        return sum(1 for m in self.members if m.name.startswith(MEDIA_PREFIX))


def build_manifest(
    *,
    hub_version: str,
    revision: str,
    created_at: datetime,
    counts: dict[str, int],
    members: list[Member],
) -> Manifest:
    return Manifest(
        hub_version=hub_version,
        revision=revision,
        created_at=created_at.isoformat(timespec="seconds"),
        counts=counts,
        members=tuple(sorted(members, key=lambda m: m.name)),
    )


class ManifestError(ValueError):
    """The archive's manifest is missing, unreadable or not a govhub backup's."""


def parse_manifest(data: bytes) -> Manifest:
    try:
        body: Any = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest.json is not valid JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ManifestError("manifest.json does not describe a govhub backup")
    if body.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"backup format version {body.get('format_version')!r} is not one this govhub reads "
            f"({FORMAT_VERSION})"
        )
    try:
        members = tuple(
            Member(name=str(name), size=int(spec["size"]), sha256=str(spec["sha256"]))
            for name, spec in sorted(dict(body["members"]).items())
        )
        counts = {str(k): int(v) for k, v in dict(body["counts"]).items()}
        return Manifest(
            hub_version=str(body["hub_version"]),
            revision=str(body["migration_revision"]),
            created_at=str(body["created_at"]),
            counts=counts,
            members=members,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"manifest.json is incomplete ({exc!r})") from None


def name_refusal(name: str) -> str | None:
    """Why a member name cannot be restored (outside the database and media folder), or None."""
    if name == DATABASE:
        return None
    path = PurePosixPath(name)
    if (
        not name.startswith(MEDIA_PREFIX)
        or path.is_absolute()
        or "\\" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or len(path.parts) < 2
    ):
        return f"{name}: not a database or media file name"
    return None


def listing_problems(manifest: Manifest, names: list[str]) -> list[str]:
    """Members the manifest and the archive disagree on, and unsafe names, one line each."""
    listed = {m.name for m in manifest.members}
    present = [n for n in names if n != MANIFEST]
    problems = [p for n in present if (p := name_refusal(n))]
    if len(present) != len(set(present)):
        problems.append("a member appears twice in the archive")
    problems += [
        f"{n}: in the archive but not in its manifest" for n in sorted(set(present) - listed)
    ]
    problems += [f"{n}: in the manifest but missing" for n in sorted(listed - set(present))]
    if DATABASE not in listed:
        problems.append(f"{DATABASE}: the manifest lists no database")
    return problems


def count_problems(manifest: Manifest, counts: dict[str, int]) -> list[str]:
    return [
        f"{table}: the manifest says {manifest.counts.get(table)}, the database holds {n}"
        for table, n in sorted(counts.items())
        if manifest.counts.get(table) != n
    ]
