"""The operator's command line: ``govhub ...``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from hub.audit.cli import activity_app, audit_command
from hub.backup.cli import backup_command, restore_command
from hub.config import get_settings
from hub.doctor.cli import doctor_command, status_command
from hub.posts.cli import deliveries_app, posts_app
from hub.reach.cli import reach_app
from hub.records.cli import archive_command

app = typer.Typer(
    help="govhub — publishing hub for government press offices.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organisations.", no_args_is_help=True)
accounts_app = typer.Typer(help="Platform accounts.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
clocks_app = typer.Typer(help="Compliance clocks (时限) and reminders.", no_args_is_help=True)
inbox_app = typer.Typer(help="The public interaction inbox (留言与评论).", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest (GOVHUB_CREDENTIALS_KEY).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(accounts_app, name="accounts")
app.add_typer(users_app, name="users")
app.add_typer(activity_app, name="activity")
app.command("audit")(audit_command)
app.command("doctor")(doctor_command)
app.command("status")(status_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("archive")(archive_command)
app.add_typer(clocks_app, name="clocks")
app.add_typer(inbox_app, name="inbox")
app.add_typer(secrets_app, name="secrets")
app.add_typer(posts_app, name="posts")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(reach_app, name="reach")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def _usage_error(message: str) -> typer.Exit:
    """Bad input on the command line (a missing file, malformed JSON): one line, exit 2."""
    return _fail(message, code=2)


def read_input_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _usage_error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise _usage_error(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise _usage_error(f"{path}: cannot be read ({exc.strerror or exc})") from None


def checked_settings() -> None:
    """Refuse to start with invalid or insecure settings, saying why in one line."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        raise _fail(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        ) from None


# -- database -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Migrate the database up (to the newest schema by default)."""
    from hub.migrate import upgrade
    from scheduler.app import prepare_broker

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")
    if prepare_broker(get_settings()):
        typer.echo("embedded broker ready")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Migrate the database down (one step by default; 'base' removes every table)."""
    from alembic.util.exc import CommandError

    from hub.migrate import current, downgrade

    url = get_settings().database_url
    try:
        downgrade(url, revision)
    except CommandError as exc:
        heads = current(url) or ""
        raise typer.BadParameter(
            f"{exc}. The database is at {heads}: name the revision to go down to "
            "(for example `govhub db downgrade "
            f"{heads.split(',')[0] if heads else 'base'}`)"
        ) from None
    typer.echo(f"database at {current(url) or '(empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from hub.migrate import current

    typer.echo(current(get_settings().database_url) or "(empty)")


# -- organisations ------------------------------------------------------------------------------


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
        raise _fail(exc.message) from exc


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


# -- accounts -----------------------------------------------------------------------------------


@accounts_app.command("add")
def accounts_add(
    org: Annotated[str, typer.Option(help="org code")],
    platform: Annotated[str, typer.Option(help="weibo | wechat | hall | webhook")],
    name: Annotated[str, typer.Option(help="display name")],
    handle: str = "",
    opened_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    interaction_channel: bool = False,
    credentials: Annotated[
        str | None,
        typer.Option(help="JSON, or @FILE to read it from a file (keeps it out of history)"),
    ] = None,
) -> None:
    """Register an account. Credentials are encrypted at rest and never printed."""
    from pydantic import ValidationError

    from hub.accounts.models import AccountCreate
    from hub.accounts.service import create
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError

    raw = credentials
    if raw and raw.startswith("@"):
        try:
            raw = read_input_file(Path(raw[1:])).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _usage_error(f"{raw[1:]}: is not UTF-8 text") from None
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        where = credentials[1:] if credentials and credentials.startswith("@") else "--credentials"
        raise _usage_error(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if parsed is not None and not isinstance(parsed, dict):
        raise _usage_error('credentials must be a JSON object, e.g. {"app_id": "..."}')
    try:
        data = AccountCreate(
            org_code=org,
            platform=platform,
            name=name,
            handle=handle,
            opened_on=date.fromisoformat(opened_on) if opened_on else None,
            interaction_channel=interaction_channel,
            credentials=parsed,
        )
        with session_scope() as session:
            account = create(
                session=session, data=data, credentials_key=get_settings().credentials_key
            )
            record(
                session=session,
                actor_id=None,
                actor_name="cli",
                action="account.create",
                object_type="account",
                object_id=account.id,
                org_id=account.org_id,
                summary=f"{platform} 账号「{name}」",
            )
            account_id = account.id
    except (HubError, ValidationError, ValueError) as exc:
        raise _fail(getattr(exc, "message", None) or str(exc)) from exc
    typer.echo(f"account {account_id} created")


@accounts_app.command("list")
def accounts_list(org: str | None = None, platform: str | None = None) -> None:
    """List accounts (never their credentials)."""
    from hub.accounts.models import Platform
    from hub.accounts.service import list_accounts
    from hub.db import session_scope

    with session_scope() as session:
        rows = list_accounts(
            session=session, org_code=org, platform=Platform(platform) if platform else None
        )
        for account, owner in rows:
            typer.echo(
                f"{account.id}\t{owner.code}\t{account.platform.value}\t{account.status.value}\t"
                f"{account.name}"
            )


# -- users --------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="admin | supervisor | editor | reviewer")],
    org: Annotated[str, typer.Option(help="org code the user's scope starts at")],
    display_name: str = "",
) -> None:
    """Create a user (password hashed with Argon2)."""
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users.models import Role
    from hub.users.service import create

    try:
        role_value = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}: use admin, supervisor, editor or reviewer") from None
    try:
        with session_scope() as session:
            user = create(
                session=session,
                username=username,
                password=password,
                role=role_value,
                org_code=org,
                display_name=display_name,
            )
            record(
                session=session,
                actor_id=None,
                actor_name="cli",
                action="user.create",
                object_type="user",
                object_id=user.id,
                org_id=user.org_id,
                summary=f"{username} ({role})",
            )
    except HubError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"user {username} created")


def _set_active(username: str, active: bool) -> None:
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users import service

    try:
        with session_scope() as session:
            user = service.get_by_username(session=session, username=username)
            changed = service.set_active(session=session, user=user, active=active)
            if changed:
                record(
                    session=session,
                    actor_id=None,
                    actor_name="cli",
                    action="user.enable" if active else "user.disable",
                    object_type="user",
                    object_id=user.id,
                    org_id=user.org_id,
                    summary=f"{user.username}："
                    + ("启用" if active else "停用（已签退所有会话和令牌）"),
                )
    except HubError as exc:
        raise _fail(exc.message) from exc
    state = "enabled" if active else "disabled (every session and token ended)"
    typer.echo(
        f"user {username} {state}"
        if changed
        else f"user {username} was already {'enabled' if active else 'disabled'}"
    )


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: they cannot log in, and every session and token of theirs ends now."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again (they log in with their password)."""
    _set_active(username, True)


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a new password for a user (password rule applies); they are signed out everywhere."""
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users import service

    try:
        with session_scope() as session:
            user = service.get_by_username(session=session, username=username)
            service.reset_password(session=session, user=user, password=password)
            record(
                session=session,
                actor_id=None,
                actor_name="cli",
                action="user.password_reset",
                object_type="user",
                object_id=user.id,
                org_id=user.org_id,
                summary=f"重置 {user.username} 的密码，并签退其所有会话",
            )
    except HubError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"password of {username} reset; every session and token of theirs ended")


# -- secrets at rest ----------------------------------------------------------------------------


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
        raise _fail(
            f"{len(report.unreadable)} value(s) open with none of the "
            f"{len(credential_keys(key))} key(s) in GOVHUB_CREDENTIALS_KEY; nothing was changed "
            "(add the key they were written with, after the new one)"
        )
    verb = "can be re-encrypted" if dry_run else "re-encrypted with the first key"
    typer.echo(f"{report.total} value(s) {verb}")


# -- compliance clocks --------------------------------------------------------------------------


@clocks_app.command("list")
def clocks_list(
    status: Annotated[
        str | None, typer.Option(help="running | overdue | met | met_late | cancelled")
    ] = None,
    org: Annotated[str | None, typer.Option(help="org code (that org and its subtree)")] = None,
) -> None:
    """List clocks, soonest deadline first (times in GOVHUB_TIMEZONE)."""
    from hub.clocks import service
    from hub.clocks.rules import ClockStatus
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.orgs.service import get_by_code
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        wanted = ClockStatus(status) if status else None
    except ValueError:
        raise _fail(
            f"unknown status {status!r}: use {', '.join(s.value for s in ClockStatus)}"
        ) from None
    try:
        with session_scope() as session:
            path = get_by_code(session=session, code=org).path if org else None
            now = utcnow()
            rows = service.list_clocks(session=session, now=now, org_path=path, status=wanted)
            public = service.to_public(
                session=session,
                rows=rows,
                now=now,
                tz=settings.tz,
                policy=service.policy_in_force(settings),
            )
    except HubError as exc:
        raise _fail(exc.message) from exc
    for clock in public:
        flag = "" if clock.calendar_confirmed else "\t(calendar unconfirmed)"
        typer.echo(
            f"{clock.id}\t{clock.status.value}\t{clock.due_at:%Y-%m-%d %H:%M}\t{clock.org_code}\t"
            f"{clock.kind}\t{clock.subject}{flag}"
        )


@inbox_app.command("list")
def inbox_list(
    status: Annotated[
        str | None, typer.Option(help="new | assigned | in_progress | replied | closed")
    ] = None,
    org: Annotated[str | None, typer.Option(help="org code (that org and its subtree)")] = None,
    overdue: Annotated[bool, typer.Option(help="only cases past their answer deadline")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List inbox cases, newest first: id, status, channel, org, answer due (GOVHUB_TIMEZONE)."""
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.inbox import service
    from hub.inbox.models import CaseStatus
    from hub.orgs.service import get_by_code
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        wanted = CaseStatus(status) if status else None
    except ValueError:
        raise _fail(
            f"unknown status {status!r}: use {', '.join(s.value for s in CaseStatus)}"
        ) from None
    try:
        with session_scope() as session:
            path = get_by_code(session=session, code=org).path if org else "/"
            now = utcnow()
            cases = service.list_cases(
                session=session,
                scope_path=path,
                status=wanted,
                overdue_at=now if overdue else None,
                limit=limit,
            )
            public = service.to_public(session=session, cases=cases, now=now)
    except HubError as exc:
        raise _fail(exc.message) from exc
    for case in public:
        due = "-"
        if case.answer_due_at:
            due = case.answer_due_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        text = " ".join(case.text.split())
        typer.echo(
            f"{case.id}\t{case.status.value}{' (overdue)' if case.overdue else ''}\t"
            f"{case.channel.value}\t{case.org_code}\t{due}\t{text[:60]}"
        )
    typer.echo(f"{len(public)} case(s)")


@inbox_app.command("ingest")
def inbox_ingest() -> None:
    """Fetch new comments from every active Weibo account now (what beat does every 5 minutes)."""
    from hub.inbox.service import ingest_all

    report = ingest_all(settings=get_settings())
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    typer.echo(report.line())
    if report.accounts_failed:
        raise typer.Exit(code=1)


@clocks_app.command("remind")
def clocks_remind() -> None:
    """Run one reminder pass now (what the beat task does every minute).

    Says how many reminders reached someone and how many failed (those are retried on the next
    pass); exits 1 when any failed.
    """
    from hub.clocks.service import remind_now
    from hub.db import session_scope

    with session_scope() as session:
        results = remind_now(session=session)
    sent = failed = silent = 0
    for item in results:
        delivered = item.emails > 0 or item.webhook
        if delivered:
            sent += 1
            outcome = f"{item.emails} e-mail(s){', webhook' if item.webhook else ''}"
            if item.error:
                outcome += f"; partly failed: {item.error}"
        elif item.error:
            failed += 1
            outcome = f"FAILED, will retry: {item.error}"
        else:
            silent += 1
            outcome = "no channel configured (GOVHUB_SMTP_HOST, GOVHUB_REMINDER_WEBHOOK_URL)"
        typer.echo(f"clock {item.clock_id}: {item.threshold} -> {outcome}")
    summary = f"{sent} reminder(s) sent, {failed} failed"
    if silent:
        summary += f", {silent} recorded without a channel"
    typer.echo(summary)
    if failed:
        raise typer.Exit(code=1)


@clocks_app.command("obligations")
def clocks_obligations(
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD: also open past periods")] = None,
) -> None:
    """Open the current periods' recurring obligations and mark met / missed."""
    from hub.clocks.service import policy_in_force, refresh_obligations
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        first = date.fromisoformat(since) if since else None
    except ValueError:
        raise _fail(f"--since must be a date such as 2026-01-01, got {since!r}") from None
    with session_scope() as session:
        report = refresh_obligations(
            session=session,
            policy=policy_in_force(settings),
            today=utcnow().astimezone(settings.tz).date(),
            tz=settings.tz,
            since=first,
        )
    typer.echo(f"{report.created} obligation period(s) opened, {report.changed} changed")


# -- processes ----------------------------------------------------------------------------------

LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        help="debug | info | warning | error (warning and above also hide Celery's banner)",
    ),
]


def _celery_args(log_level: str) -> list[str]:
    """Celery's global flags for ``log_level``: quiet (no banner) from warning up."""
    quiet = log_level.lower() not in {"debug", "info"}
    return ["--quiet"] if quiet else []


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
    backlog: Annotated[int, typer.Option(help="pending connections the socket queues")] = 2048,
    gc_freeze: Annotated[
        bool, typer.Option(help="after startup, keep startup objects out of full collections")
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Run the web server (API, pages, release hall)."""
    import uvicorn

    from scheduler.app import prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    os.environ["GOVHUB_GC_FREEZE"] = "1" if gc_freeze else "0"  # read by create_app (workers too)
    from hub.logs import serving

    with serving(log_level, access_log=access_log):  # hub/logs.py; the access line: RequestLog
        uvicorn.run(
            "hub.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.lower(),
            log_config=None,
            access_log=False,
            backlog=backlog,
            proxy_headers=False,  # X-Forwarded-For: only from GOVHUB_TRUSTED_PROXIES (client_ip)
        )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="threads (or processes) per worker")] = 8,
    pool: str = "threads",
    queues: Annotated[
        str,
        typer.Option(
            help="comma-separated queues to consume; every worker pool must cover "
            "govhub.quick (polls, releases, sweeps) and celery (everything else)"
        ),
    ] = "govhub.quick,celery",
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="worker processes to run side by side (each with --concurrency threads); "
            "more than one uses more than one CPU core",
        ),
    ] = 1,
    supervise: Annotated[
        bool,
        typer.Option(help="restart the Celery worker when it dies of an unrecoverable error"),
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Run a Celery worker (publishing, polling, ingestion).

    Supervised by default: Celery gives up on some broker failures (a Redis restart while a
    thread acknowledges a task); the worker is then started again, and the sweeper hands it
    whatever was in flight. Ctrl+C or SIGTERM stops it for good. ``--processes N`` runs N
    supervised workers, so that publishing is not bound to one core by Python's GIL.
    """
    from scheduler.app import get_celery, prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    if not supervise:
        if processes != 1:
            raise typer.BadParameter("--processes needs supervision (drop --no-supervise)")
        get_celery().worker_main(
            [
                *_celery_args(log_level),
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={queues}",
                f"--loglevel={log_level}",
                "--without-gossip",
                "--without-mingle",
                # worker-heartbeat events feed monitors such as Flower, which the hub does not
                # use (its own heartbeat is a task); on Redis they cost a sixth of the GIL
                "--without-heartbeat",
                *(
                    ["--hostname", os.environ["GOVHUB_WORKER_NAME"]]
                    if os.environ.get("GOVHUB_WORKER_NAME")
                    else []
                ),
            ]
        )
        return
    child_cmd = [
        sys.executable,
        "-m",
        "hub",
        "worker",
        "--no-supervise",
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--queues",
        queues,
        "--log-level",
        log_level,
    ]
    host = socket.gethostname()
    names = [f"worker{n}@{host}" if processes > 1 else "" for n in range(1, processes + 1)]
    raise typer.Exit(_supervise([child_cmd] * processes, name="worker", names=names))


def _supervise(cmds: list[list[str]], *, name: str, names: list[str] | None = None) -> int:
    """Run every command; start one again whenever it dies with an error, until told to stop.

    ``names`` (one per command, "" for none) reach each child as ``GOVHUB_WORKER_NAME``.
    """
    stopping = False
    children: list[subprocess.Popen[bytes] | None] = [None] * len(cmds)
    names = names or [""] * len(cmds)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child is not None and child.poll() is None:
                child.send_signal(signum)

    def start(i: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if names[i]:
            env["GOVHUB_WORKER_NAME"] = names[i]
        return subprocess.Popen(cmds[i], env=env)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = [time.monotonic()] * len(cmds)
    delays = [1.0] * len(cmds)
    restart_at: list[float | None] = [None] * len(cmds)
    for i in range(len(cmds)):
        children[i] = start(i)
    last_code = 0
    while True:
        now = time.monotonic()
        for i, child in enumerate(children):
            if child is None:
                at = restart_at[i]
                if at is not None and now >= at and not stopping:
                    children[i], started[i], restart_at[i] = start(i), now, None
                continue
            code = child.poll()
            if code is None:
                continue
            last_code = code
            children[i] = None
            if stopping or code == 0:
                continue
            if now - started[i] > 60:
                delays[i] = 1.0  # it ran for a while: this is a new failure, not a crash loop
            label = name if len(cmds) == 1 else f"{name} {i + 1}"
            typer.secho(
                f"{label} exited with {code}; starting it again in {delays[i]:.0f} s",
                fg="yellow",
                err=True,
            )
            restart_at[i] = now + delays[i]
            delays[i] = min(delays[i] * 2, 30.0)
        if all(c is None for c in children) and (stopping or all(at is None for at in restart_at)):
            return last_code
        time.sleep(0.1)


@app.command()
def beat(
    schedule: Annotated[Path, typer.Option(help="beat's state file")] = Path("var")
    / "celerybeat-schedule",
    log_level: LogLevel = "info",
) -> None:
    """Run Celery beat (scheduled posts, sweeps, ingestion, reminders)."""
    from scheduler.app import get_celery, prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    schedule.parent.mkdir(parents=True, exist_ok=True)
    get_celery().start(
        [*_celery_args(log_level), "beat", f"--schedule={schedule}", f"--loglevel={log_level}"]
    )


# Every demo user's password (it passes the password rule: hub/users/passwords.py).
DEMO_PASSWORD = "Govhub-Demo-2026"


def _demo_data() -> list[str]:
    """Migrate, import Guizhou and its departments, create users and accounts. Idempotent."""
    from sqlmodel import select

    from hub.accounts.models import Account, AccountCreate
    from hub.accounts.service import create as create_account
    from hub.db import session_scope
    from hub.migrate import upgrade
    from hub.orgs.service import get_by_code
    from hub.platforms import builtin_channel
    from hub.users.models import Role, User
    from hub.users.service import create as create_user
    from scheduler.app import prepare_broker

    settings = get_settings()
    upgrade(settings.database_url)
    prepare_broker(settings)  # before web, worker and beat start together
    data = resources.files("hub") / "data"
    lines = [
        "orgs: " + import_org_file(None, (data / "guizhou-divisions.csv").read_text("utf-8")),
        "departments: "
        + import_org_file(None, (data / "guizhou-departments.csv").read_text("utf-8")),
    ]
    demo_users = [
        ("admin", Role.admin, "520000", "系统管理员"),
        ("supervisor", Role.supervisor, "520000-bgt", "省政府办公厅督查"),
        ("editor", Role.editor, "520000-xwb", "省新闻办编辑"),
        ("reviewer", Role.reviewer, "520000-xwb", "省新闻办审核"),
        ("qdn-editor", Role.editor, "522600", "黔东南州编辑"),
        ("kaili-editor", Role.editor, "522601", "凯里市编辑"),
        ("kaili-reviewer", Role.reviewer, "522601", "凯里市审核"),
    ]
    with session_scope() as session:
        for username, role, org_code, display in demo_users:
            if session.exec(select(User).where(User.username == username)).first() is None:
                create_user(
                    session=session,
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    org_code=org_code,
                    display_name=display,
                )
            lines.append(
                f"user {username:<15} password {DEMO_PASSWORD}   ({role.value} @ {org_code})"
            )
        if session.exec(select(Account)).first() is None:
            for code in ("520000-xwb", "522600", "522601", "520100", "520102"):
                org = get_by_code(session=session, code=code)
                create_account(
                    session=session,
                    data=AccountCreate(
                        org_code=code,
                        platform=builtin_channel(),
                        name=f"{org.name}发布厅",
                        opened_on=date(2014, 1, 1),
                        interaction_channel=True,
                    ),
                    credentials_key=settings.credentials_key,
                    org=org,
                )
    return lines


def _demo_sandbox_accounts(sandbox_url: str, public_base_url: str) -> list[str]:
    """Bind the demo's Weibo and WeChat accounts to the simulators (tokens re-minted each start)."""
    import httpx

    from hub.accounts.demo import bind_sandbox_accounts
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    with httpx.Client(timeout=10) as client, session_scope() as session:
        return bind_sandbox_accounts(
            session=session,
            client=client,
            sandbox_url=sandbox_url,
            public_base_url=public_base_url,
            credentials_key=get_settings().credentials_key,
            now=utcnow(),
        )


@app.command()
def sandbox(
    host: str = "127.0.0.1",
    port: int = 9100,
    public_base_url: Annotated[
        str | None, typer.Option(help="the hub's URL: Weibo's safe domain (default: settings)")
    ] = None,
) -> None:
    """Run the platform simulators (Weibo, WeChat, partner webhooks) in the foreground."""
    import uvicorn

    from connectors.sandbox.app import build_sandboxes

    sandboxes = build_sandboxes(public_base_url=public_base_url or get_settings().public_base_url)
    base = f"http://{host}:{port}"
    typer.echo(f"GOVHUB_WEIBO_API_BASE={base}/weibo")
    typer.echo(f"GOVHUB_WECHAT_API_BASE={base}/wechat")
    typer.echo(f"partner webhooks: {base}/partner/hooks/<name>  (Ctrl+C stops)")
    try:
        uvicorn.run(sandboxes.app, host=host, port=port, log_level="info")
    finally:
        sandboxes.close()


def _ready(readyz: str) -> bool:
    import httpx

    try:
        return httpx.get(readyz, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _print_ready(url: str, logins: list[str]) -> None:
    """The last thing on the demo's console: where to go and how to log in."""
    typer.secho(f"\ngovhub is ready: open {url}  (API docs {url}docs)", fg="green", bold=True)
    for line in logins:
        typer.echo(f"  {line}")
    typer.secho("Ctrl+C stops it.", fg="green")


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000, sandbox_port: int = 0) -> None:
    """Set up demo data and run web server + worker + beat together; Ctrl+C stops all of it.

    The Weibo and WeChat simulators run inside this process (``--sandbox-port``, default: a free
    port); the demo's Weibo and WeChat accounts are bound to them on every start.
    """
    from connectors.sandbox.app import start_sandboxes

    Path("var").mkdir(exist_ok=True)
    setup = _demo_data()
    for line in setup:
        typer.echo(line)
    logins = [line for line in setup if line.startswith("user ")]
    env = dict(os.environ)
    env.setdefault("GOVHUB_PUBLIC_BASE_URL", f"http://{host}:{port}")
    # Weibo's rip for sends with no person's IP (a documentation address: simulators only)
    env.setdefault("GOVHUB_WEIBO_FALLBACK_RIP", "192.0.2.1")
    sandboxes, sandbox_server = start_sandboxes(
        port=sandbox_port, public_base_url=env["GOVHUB_PUBLIC_BASE_URL"]
    )
    env["GOVHUB_WEIBO_API_BASE"] = f"{sandbox_server.base_url}/weibo"
    env["GOVHUB_WECHAT_API_BASE"] = f"{sandbox_server.base_url}/wechat"
    for line in _demo_sandbox_accounts(sandbox_server.base_url, env["GOVHUB_PUBLIC_BASE_URL"]):
        typer.echo(line)
    typer.echo(f"sandboxes at {sandbox_server.base_url}: /weibo /wechat /partner")
    python = sys.executable
    quiet = ["--log-level", "warning"]  # warnings, errors and delivery outcomes (hub/logs.py)
    parts = {
        "web": [
            python,
            "-m",
            "hub",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--no-access-log",
            *quiet,
        ],
        "worker": [python, "-m", "hub", "worker", "--concurrency", "8", *quiet],
        "beat": [python, "-m", "hub", "beat", *quiet],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in parts.items()}
    url = f"http://{host}:{port}/"
    typer.secho(f"\ngovhub is starting at {url} ...", fg="green")
    ready_by: float | None = time.monotonic() + 120
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    typer.secho(f"{name} exited with {proc.returncode}; stopping", fg="red")
                    exit_code = 1
                    stopping = True
            if ready_by is not None and not stopping:
                if _ready(f"{url}readyz"):
                    ready_by = None
                    _print_ready(url, logins)
                elif time.monotonic() > ready_by:
                    ready_by = None
                    typer.secho(f"not ready after 2 minutes: see {url}readyz", fg="red")
            time.sleep(0.3)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        sandboxes.close()
        sandbox_server.stop()
    raise typer.Exit(exit_code)
