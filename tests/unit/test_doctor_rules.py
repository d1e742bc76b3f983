"""The doctor's verdicts on settings, migrations, heartbeats and token expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.doctor.rules import (
    DeploymentFacts,
    Level,
    check_deployment,
    check_heartbeats,
    check_migrations,
    check_token_expiry,
    worst,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def facts(**changes: object) -> DeploymentFacts:
    base: dict[str, object] = {
        "production": True,
        "secret_key_default": False,
        "credentials_key_default": False,
        "credentials_key_valid": True,
        "public_base_url": "https://fabu.guizhou.gov.cn",
        "weibo_app_key": "3456789012",
        "api_bases": {"weibo": "https://api.weibo.com", "wechat": "https://api.weixin.qq.com"},
        "database_url": "postgresql+psycopg://govhub@db/govhub",
        "broker_url": "redis://redis:6379/0",
        "redis_url": "redis://redis:6379/1",
    }
    base.update(changes)
    return DeploymentFacts(**base)  # type: ignore[arg-type]


def levels(**changes: object) -> dict[str, Level]:
    return {f.subject: f.level for f in check_deployment(facts(**changes))}


def test_a_ready_production_deployment_has_nothing_to_fix() -> None:
    assert worst(check_deployment(facts())) == Level.ok


def test_default_secrets_are_errors_in_production_and_warnings_in_development() -> None:
    assert levels(secret_key_default=True)["GOVHUB_SECRET_KEY"] == Level.error
    dev = levels(production=False, secret_key_default=True)
    assert dev["GOVHUB_SECRET_KEY"] == Level.warn
    assert dev["运行模式"] == Level.warn


def test_a_public_url_the_public_cannot_reach_is_refused() -> None:
    for url in ("http://127.0.0.1:8000", "https://localhost", "https://192.168.3.4", "fabu"):
        assert levels(public_base_url=url)["GOVHUB_PUBLIC_BASE_URL"] == Level.error, url
    assert levels(public_base_url="http://fabu.gov.cn")["GOVHUB_PUBLIC_BASE_URL"] == Level.error
    assert (
        levels(production=False, public_base_url="http://fabu.gov.cn")["GOVHUB_PUBLIC_BASE_URL"]
        == Level.warn
    )


def test_sandbox_platform_settings_are_called_out() -> None:
    found = levels(
        weibo_app_key="govhub-sandbox",
        api_bases={"weibo": "http://127.0.0.1:9000/weibo", "wechat": "https://api.weixin.qq.com/"},
    )
    assert found["GOVHUB_WEIBO_APP_KEY"] == Level.error
    assert found["GOVHUB_WEIBO_API_BASE"] == Level.error
    assert "GOVHUB_WECHAT_API_BASE" not in found  # a trailing slash is still the platform


def test_embedded_services_in_production_are_warnings() -> None:
    found = levels(database_url="sqlite:///var/x", broker_url="sqla+sqlite:///b", redis_url=None)
    assert found["GOVHUB_DATABASE_URL"] == found["GOVHUB_BROKER_URL"] == Level.warn
    assert found["GOVHUB_REDIS_URL"] == Level.warn


def test_migrations_must_be_at_every_head() -> None:
    assert check_migrations("0009", ["0009"]).level == Level.ok
    behind = check_migrations("0008", ["0009"])
    assert behind.level == Level.error and "0008" in behind.message
    assert check_migrations(None, ["0009"]).level == Level.error


def test_heartbeats_never_seen_or_stale() -> None:
    found = check_heartbeats(
        {"worker": NOW - timedelta(minutes=10)}, now=NOW, stale_after=timedelta(minutes=3)
    )
    by_level = {f.subject: f.level for f in found}
    assert by_level["发布进程（govhub worker）"] == Level.error
    assert by_level["定时进程（govhub beat）"] == Level.warn
    fresh = check_heartbeats(
        {"worker": NOW, "beat": NOW - timedelta(seconds=30)},
        now=NOW,
        stale_after=timedelta(minutes=3),
    )
    assert worst(fresh) == Level.ok


def test_weibo_token_expiry() -> None:
    assert check_token_expiry("微博", NOW - timedelta(seconds=1), now=NOW).level == Level.error
    soon = check_token_expiry("微博", NOW + timedelta(days=3), now=NOW)
    assert soon.level == Level.warn and "3 天" in soon.message
    assert check_token_expiry("微博", NOW + timedelta(days=30), now=NOW).level == Level.ok


def test_wechat_callback_configuration() -> None:
    from hub.doctor.rules import check_wechat_callback

    url = "https://fabu.gov.cn/callbacks/wechat/7"
    (none,) = check_wechat_callback("公众号", url=url, token=False, aes_key=False)
    assert none.level == Level.warn and url in none.fix and "自定义菜单会失效" in none.fix
    (plain,) = check_wechat_callback("公众号", url=url, token=True, aes_key=False)
    assert plain.level == Level.warn and "安全模式" in plain.fix
    (safe,) = check_wechat_callback("公众号", url=url, token=True, aes_key=True)
    assert safe.level == Level.ok
