"""The backup manifest and the records-retention year: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.backup import rules
from hub.records import rules as records


def _manifest(*names: str) -> rules.Manifest:
    return rules.build_manifest(
        hub_version="0.1.0",
        revision="0016",
        created_at=datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
        counts={"posts": 1, "deliveries": 2, "audit_log": 3},
        members=[rules.Member(name=n, size=1, sha256="0" * 64) for n in names],
    )


def test_a_manifest_survives_its_own_json() -> None:
    manifest = _manifest("media/uploads/a.jpg", "database.sqlite3")
    again = rules.parse_manifest(manifest.to_json())
    assert again == manifest
    assert [m.name for m in again.members] == ["database.sqlite3", "media/uploads/a.jpg"]
    assert again.media_files == 1 and again.created_at == "2026-11-30T01:00:00+00:00"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff", "not valid JSON"),
        (b'{"format": "something-else"}', "not describe a govhub backup"),
        (b'{"format": "govhub-backup", "format_version": 9}', "format version 9"),
        (b'{"format": "govhub-backup", "format_version": 1}', "incomplete"),
    ],
)
def test_a_manifest_that_is_not_ours_is_refused_with_a_reason(data: bytes, says: str) -> None:
    with pytest.raises(rules.ManifestError, match=says):
        rules.parse_manifest(data)


@pytest.mark.parametrize(
    "name",
    ["../database.sqlite3", "media/../../etc/passwd", "/etc/passwd", "media/", "media//a", "other.txt",
     "media\\..\\x", "media/./a"],
)  # fmt: skip
def test_only_the_database_and_files_under_media_may_be_restored(name: str) -> None:
    assert rules.name_refusal(name) is not None
    assert rules.name_refusal("media/uploads/ab.png") is None
    assert rules.name_refusal("database.sqlite3") is None


def test_listing_problems_name_every_disagreement() -> None:
    manifest = _manifest("database.sqlite3", "media/uploads/a.jpg")
    assert (
        rules.listing_problems(manifest, ["manifest.json", *[m.name for m in manifest.members]])
        == []
    )
    problems = rules.listing_problems(
        manifest, ["manifest.json", "database.sqlite3", "media/uploads/b.jpg"]
    )
    assert problems == [
        "media/uploads/b.jpg: in the archive but not in its manifest",
        "media/uploads/a.jpg: in the manifest but missing",
    ]
    assert "the manifest lists no database" in rules.listing_problems(_manifest(), [])[-1]


def test_row_counts_are_compared_with_the_manifest() -> None:
    manifest = _manifest("database.sqlite3")
    assert rules.count_problems(manifest, {"posts": 1, "deliveries": 2, "audit_log": 3}) == []
    assert rules.count_problems(manifest, {"posts": 0, "deliveries": 2, "audit_log": 3}) == [
        "posts: the manifest says 1, the database holds 0"
    ]


def test_a_records_year_is_counted_in_the_configured_time_zone() -> None:
    start, end = records.year_bounds(2025, ZoneInfo("Asia/Shanghai"))
    assert start == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)
    assert end == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert records.local(datetime(2024, 12, 31, 16, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai")) == (
        "2025-01-01T00:30:00+08:00"
    )
    assert records.readable("2025-01-01T00:30:00+08:00") == "2025-01-01 00:30"
    assert records.post_stem(42) == "posts/000042"
    assert records.year_refusal(2025, 2026) is None
    assert records.year_refusal(2027, 2026) == "--year must be between 2000 and 2026, not 2027"
    assert records.year_refusal(1999, 2026) is not None
