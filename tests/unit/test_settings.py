from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.config import Settings


def test_defaults_run_embedded_without_any_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOVHUB_DATABASE_URL", "GOVHUB_BROKER_URL", "GOVHUB_ENV", "GOVHUB_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url.startswith("sqlite:///var/")
    assert settings.broker_url.startswith("sqla+sqlite:///var/")
    assert settings.redis_url is None
    assert settings.weibo_api_base == "https://api.weibo.com"
    assert settings.wechat_api_base == "https://api.weixin.qq.com"
    assert settings.timezone == "Asia/Shanghai"


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.delenv("GOVHUB_SECRET_KEY", raising=False)
    monkeypatch.delenv("GOVHUB_CREDENTIALS_KEY", raising=False)
    with pytest.raises(ValidationError, match=r"GOVHUB_SECRET_KEY.*GOVHUB_CREDENTIALS_KEY"):
        Settings()


def test_production_refuses_an_empty_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.setenv("GOVHUB_SECRET_KEY", "")
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", "x" * 44)
    with pytest.raises(ValidationError, match="GOVHUB_SECRET_KEY"):
        Settings()


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.setenv("GOVHUB_SECRET_KEY", "a-long-random-secret-for-production")
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", Fernet.generate_key().decode())
    assert Settings().env == "production"


def test_production_server_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hub.cli import app
    from hub.config import get_settings

    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.delenv("GOVHUB_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "refuses to start with a default or missing secret" in result.output
