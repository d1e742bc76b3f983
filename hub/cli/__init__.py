"""The operator's command line: ``govhub ...``. One module per command group; this one mounts
them (the order here is the order ``govhub --help`` lists them)."""

from __future__ import annotations

import typer

from hub.audit.cli import activity_app, audit_command
from hub.backup.cli import backup_command, restore_command
from hub.cli.accounts import accounts_app
from hub.cli.clocks import clocks_app
from hub.cli.db import db_app
from hub.cli.demo import demo, sandbox
from hub.cli.inbox import inbox_app
from hub.cli.orgs import orgs_app
from hub.cli.processes import beat, serve, worker
from hub.cli.secrets import secrets_app
from hub.cli.users import users_app
from hub.doctor.cli import doctor_command, status_command
from hub.posts.cli import deliveries_app, posts_app
from hub.reach.cli import reach_app
from hub.records.cli import archive_command

app = typer.Typer(
    help="govhub — publishing hub for government press offices.", no_args_is_help=True
)
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
app.command()(serve)
app.command()(worker)
app.command()(beat)
app.command()(sandbox)
app.command()(demo)

__all__ = ["app"]
