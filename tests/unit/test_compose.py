"""compose.yaml cannot be run here (no Docker engine); check that it asks for real things."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from hub.cli import app
from hub.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def is_govhub_command(argv: list[str]) -> bool:
    """Walk the Typer command tree with argv's words; the final word must be a real command."""
    assert argv[0] == "govhub"
    command: Any = get_command(app)
    for word in argv[1:]:
        if word.startswith("-"):
            break
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            return False
        command = sub
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    given = [w for w in argv if w.startswith("--")]
    return not hasattr(command, "commands") and all(flag in options for flag in given)


def test_every_hub_service_runs_a_real_govhub_command() -> None:
    services = compose()["services"]
    hub_services = {n: s for n, s in services.items() if s.get("image") == "govhub:latest"}
    assert set(hub_services) == {"migrate", "api", "worker", "beat"}
    for name, service in hub_services.items():
        assert is_govhub_command(service["command"]), f"{name}: {service['command']}"
    assert not is_govhub_command(["govhub", "db", "explode"])
    assert not is_govhub_command(["govhub", "serve", "--colour", "red"])


def test_every_variable_passed_is_a_real_setting_and_secrets_are_required() -> None:
    fields = {f"GOVHUB_{name.upper()}" for name in Settings.model_fields}
    services = compose()["services"]
    for name in ("migrate", "api", "worker", "beat"):
        env = services[name]["environment"]
        unknown = {key for key in env if key.startswith("GOVHUB_")} - fields
        assert not unknown, f"{name} passes unknown settings {unknown}"
        assert env["GOVHUB_ENV"] == "production"
        for secret in ("GOVHUB_SECRET_KEY", "GOVHUB_CREDENTIALS_KEY"):
            assert re.fullmatch(r"\$\{" + secret + r":\?[^}]*\}", env[secret]), secret
    text = (ROOT / "compose.yaml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text


def test_services_have_healthchecks_and_start_in_order() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "api", "worker", "beat"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and "govhub" in dockerfile
