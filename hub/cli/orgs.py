"""Organisations: ``govhub orgs ...``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import fail, read_input_file

orgs_app = typer.Typer(help="Organisations.", no_args_is_help=True)


def import_org_file(path: Path | None, text: str | None = None) -> str:
    from hub.db import session_scope
    from hub.orgs.service import decode_csv, import_rows, parse_csv

    content = text if text is not None else decode_csv(read_input_file(path))  # type: ignore[arg-type]
    rows = parse_csv(content)
    with session_scope() as session:
        report = import_rows(session=session, rows=rows, today=date.today())
    return (
        f"{len(rows)} rows: {report.created} created, {report.renamed} renamed, "
        f"{report.updated} updated, {report.unchanged} unchanged"
    )


@orgs_app.command("import")
def orgs_import(file: Annotated[Path, typer.Argument(dir_okay=False)]) -> None:
    """Import a divisions CSV (code,name,level,parent_code[,livelihood][,press_office]).

    UTF-8 (with or without BOM) and GB18030/GBK files are read; flags are yes/no, true/false,
    1/0 or 是/否.

    Idempotent: re-importing updates names (keeping the old ones as history) and never changes ids.
    """
    from hub.errors import HubError

    try:
        typer.echo(import_org_file(file))
    except HubError as exc:
        raise fail(exc.message) from exc


@orgs_app.command("list")
def orgs_list(level: str | None = None, under: str | None = None, as_json: bool = False) -> None:
    """List organisations."""
    from hub.db import session_scope
    from hub.orgs.models import OrgLevel
    from hub.orgs.service import list_orgs, to_public

    with session_scope() as session:
        orgs = list_orgs(
            session=session, level=OrgLevel(level) if level else None, under_code=under
        )
        public = to_public(session=session, orgs=orgs)
    if as_json:
        typer.echo(json.dumps([o.model_dump(mode="json") for o in public], ensure_ascii=False))
        return
    for org in public:
        typer.echo(f"{org.code}\t{org.level.value}\t{org.name}")
