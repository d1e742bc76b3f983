"""The README is the contract operators read: every setting and command must be in it."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from hub.cli import app
from hub.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make demo" in head and "make test" in head


def test_every_setting_is_documented() -> None:
    missing = [
        f"GOVHUB_{name.upper()}"
        for name in Settings.model_fields
        if f"GOVHUB_{name.upper()}" not in README
    ]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    root = get_command(app)
    names: list[str] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        names += [f"govhub {name} {sub}" for sub in subs] if subs else [f"govhub {name}"]
    missing = [n for n in names if n not in README and n.replace("govhub ", "") not in README]
    assert missing == []


def test_the_architecture_map_names_every_folder_of_hub() -> None:
    root = Path(__file__).resolve().parents[2] / "hub"
    block = README.split("## Architecture", 1)[1].split("The path of a post", 1)[0]
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert [name for name in folders if f"{name}/" not in block] == []
