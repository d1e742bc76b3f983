"""Re-encrypting every secret at rest under a new ``GOVHUB_CREDENTIALS_KEY`` (``govhub secrets
rotate``).

An encrypted column is found, not listed: any column of any table that is named ``*_encrypted``,
or carries ``info={"encrypted": True}``, or whose type has a true ``encrypted`` attribute (a
Fernet column type). Its stored values are Fernet tokens; each one is decrypted with whichever
key in ``GOVHUB_CREDENTIALS_KEY`` opens it and re-encrypted with the first key
(:func:`hub.security.rotate_token`), in one transaction: either every value moves to the new key
or, when one cannot be decrypted with any key, nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Column, MetaData, Table
from sqlmodel import Session

from hub.security import CredentialsError, rotate_token


def is_encrypted(column: Column[object]) -> bool:
    return (
        column.name.endswith("_encrypted")
        or bool(column.info.get("encrypted"))
        or bool(getattr(column.type, "encrypted", False))
    )


def encrypted_columns(metadata: MetaData) -> list[tuple[Table, Column[object]]]:
    """Every (table, column) holding encrypted values, in a stable order."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if is_encrypted(column)
    ]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" -> values
    unreadable: list[str] = field(default_factory=list)  # "table.column pk=..."

    @property
    def total(self) -> int:
        return sum(self.rotated.values())


def rotate_all(
    *, session: Session, key: str, metadata: MetaData, dry_run: bool = False
) -> RotationReport:
    """Re-encrypt every value of every encrypted column under the first key of ``key``.

    Values are read and written as plain text (below any decrypting column type). Nothing is
    written when a value cannot be decrypted or ``dry_run`` is set. The caller commits.
    """
    report = RotationReport()
    updates: list[tuple[Table, str, list[Column[object]], tuple[object, ...], str]] = []
    for table, column in encrypted_columns(metadata):
        keys = list(table.primary_key.columns)
        raw = sa.type_coerce(column, sa.Text()).label("value")
        name = f"{table.name}.{column.name}"
        report.rotated[name] = 0
        for row in session.execute(sa.select(*keys, raw).where(column.isnot(None))).all():
            value = row[-1]
            if not value:
                continue
            ident = tuple(row[: len(keys)])
            try:
                fresh = rotate_token(key, str(value))
            except CredentialsError:
                report.unreadable.append(
                    f"{name} {dict(zip([k.name for k in keys], ident, strict=True))}"
                )
                continue
            updates.append((table, column.name, keys, ident, fresh))
            report.rotated[name] += 1
    if report.unreadable or dry_run:
        return report
    for table, column_name, keys, ident, fresh in updates:
        lightweight = sa.table(
            table.name, sa.column(column_name, sa.Text()), *(sa.column(k.name) for k in keys)
        )
        condition = sa.and_(*(lightweight.c[k.name] == v for k, v in zip(keys, ident, strict=True)))
        session.execute(sa.update(lightweight).where(condition).values({column_name: fresh}))
    return report
