"""What every ``govhub`` command shares: failing in one line, reading an input file, checked
settings."""

from __future__ import annotations

from pathlib import Path

import typer

from hub.config import get_settings
from hub.users.who import Who

CLI = Who(system="cli")
"""A command acting (the audit log names it "cli")."""


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def usage_error(message: str) -> typer.Exit:
    """Bad input on the command line (a missing file, malformed JSON): one line, exit 2."""
    return fail(message, code=2)


def read_input_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise usage_error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise usage_error(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise usage_error(f"{path}: cannot be read ({exc.strerror or exc})") from None


def checked_settings() -> None:
    """Refuse to start with invalid or insecure settings, saying why in one line."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        raise fail(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        ) from None
