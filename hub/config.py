"""Settings: one class, environment variables with the prefix ``GOVHUB_``.

Read through :func:`get_settings`; nothing is built at import time.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-secret-key-change-me"
# A valid Fernet key used only in development; production refuses it.
DEV_CREDENTIALS_KEY = "ZGV2LWNyZWRlbnRpYWxzLWtleS0zMmJ5dGVzLWxvbmc="

VAR_DIR = Path("var")


class InsecureSettingsError(ValueError):
    """Raised when production is started with a default or missing secret."""


class Settings(BaseSettings):
    """Every knob of the hub. Each field is read from ``GOVHUB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GOVHUB_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'govhub.sqlite3'}",
        description="SQLAlchemy URL of the database (SQLite file under ./var/ by default).",
    )
    broker_url: str = Field(
        default=f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}",
        description="Celery broker URL (embedded: kombu's SQLAlchemy transport on SQLite).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for pacing, token cache and live pub/sub (optional).",
    )
    live_poll_seconds: float = Field(
        default=0.25,
        ge=0.05,
        le=60,
        description=(
            "Without Redis: how often each serve process reads which live sessions have new "
            "events (one query per process, however many readers), so that entries written "
            "through another process reach its readers. With Redis: the safety net for "
            "pub/sub messages lost in a reconnect, at 20 times this interval."
        ),
    )
    secret_key: str = Field(default=DEV_SECRET_KEY, description="Signs sessions and tokens.")
    credentials_key: str = Field(
        default=DEV_CREDENTIALS_KEY,
        description=(
            "Fernet key that encrypts credentials at rest; during a rotation a comma-separated "
            "list (new key first: it encrypts, every key decrypts; see `govhub secrets rotate`)."
        ),
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public URL of the hub (the release hall; Weibo's safe domain).",
    )
    weibo_api_base: str = Field(default="https://api.weibo.com", description="Weibo API base.")
    wechat_api_base: str = Field(
        default="https://api.weixin.qq.com", description="WeChat API base."
    )
    weibo_app_key: str = Field(default="govhub-sandbox", description="Weibo app key (client_id).")
    weibo_app_secret: str = Field(
        default="govhub-sandbox-secret", description="Weibo app secret (client_secret)."
    )
    weibo_fallback_rip: str = Field(
        default="",
        description=(
            "Public IP reported to Weibo as rip when the acting person's own IP is unknown or "
            "not public (e.g. the unit's Internet egress IP)."
        ),
    )
    account_recheck_seconds: int = Field(
        default=600,
        ge=10,
        description="First re-test of an account flagged misconfigured (doubles each time).",
    )
    account_recheck_max_seconds: int = Field(
        default=6 * 3600,
        ge=10,
        description="Longest wait between two automatic re-tests of a misconfigured account.",
    )
    timezone: str = Field(default="Asia/Shanghai", description="Time zone shown to people.")
    policy: str = Field(
        default="national-2019,guizhou-2013",
        description="Policy presets in force, applied left to right (later ones override).",
    )
    media_dir: str = Field(default=str(VAR_DIR / "media"), description="Uploaded images.")
    image_variants: Literal["shared", "off"] = Field(
        default="shared",
        description=(
            "Image variants (e.g. a cover thumb) made once per picture and kept under "
            "<media_dir>/variants for every account and worker; off: each publication makes "
            "its own (for benchmarks)."
        ),
    )
    media_max_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest uploaded image in pixels (width x height, all frames counted).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow partner webhooks to loopback/private addresses (SSRF guard off).",
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body.")
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins for one username (from any address) before it is throttled.",
    )
    login_max_failures_per_ip: int = Field(
        default=20,
        ge=1,
        description="Failed logins from one client address (any usernames) before it is throttled.",
    )
    login_lockout_seconds: int = Field(default=300, description="Throttle window for logins.")
    token_ttl_minutes: int = Field(
        default=60, ge=1, description="Lifetime of API bearer tokens (log in again after it)."
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, description="A web session unused this long is signed out."
    )
    session_max_hours: int = Field(
        default=12, ge=1, description="A web session ends this long after login, used or not."
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is believed "
            "(default: none; the peer address is the client)."
        ),
    )
    delivery_lease_seconds: int = Field(
        default=300, description="How long a worker owns a delivery it is sending."
    )
    worker_dead_seconds: int = Field(
        default=30,
        ge=5,
        le=3600,
        description=(
            "A worker whose own heartbeat (every third of this, at most 10 s) is older than this "
            "is dead: the sweeper takes its copies over without waiting for their lease."
        ),
    )
    enqueue_lease_seconds: int = Field(
        default=60,
        description="How long an enqueued delivery waits before the sweeper re-sends it.",
    )
    retry_max_attempts: int = Field(
        default=15,
        ge=1,
        le=100,
        description="Attempts a delivery gets against transient platform errors before it fails.",
    )
    retry_backoff_max_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest wait between two attempts (exponential back-off with jitter).",
    )
    missed_window_minutes: int = Field(
        default=120, description="A scheduled post this late is marked missed instead of sent."
    )
    wechat_reconcile_grace_minutes: int = Field(
        default=10,
        ge=1,
        le=24 * 60,
        description="How long a lost freepublish/submit answer is looked for in the published "
        "list before the delivery is left to a person (it is never submitted again).",
    )
    reach_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description="Readers' counts are pulled for copies published in the last N days.",
    )
    reach_interval_minutes: int = Field(
        default=360,
        ge=5,
        le=7 * 24 * 60,
        description="Each account's counts are pulled at most this often (per-account pacing).",
    )
    reach_backoff_max_minutes: int = Field(
        default=24 * 60,
        ge=1,
        le=7 * 24 * 60,
        description="Longest wait before an account whose pull failed is tried again.",
    )
    hall_cache: bool = Field(
        default=True,
        description=(
            "Serve the public hall's pages and feeds from an in-process cache, rendered once per "
            "change (docs/hall.md, Caching)."
        ),
    )
    hall_cache_max_age: int = Field(
        default=10, ge=0, le=3600, description="max-age (seconds) of the hall's public answers."
    )
    hall_cache_stale_seconds: int = Field(
        default=30,
        ge=0,
        le=86400,
        description="stale-while-revalidate (seconds) a reverse proxy may serve a hall answer.",
    )
    hall_cache_check_ms: int = Field(
        default=250,
        ge=20,
        le=60_000,
        description=(
            "How often (ms) each web process reads the hall's change stamp (with Redis, changes "
            "are also pushed at once)."
        ),
    )
    hall_cache_entries: int = Field(
        default=1000, ge=1, description="Most hall answers one process keeps (least recent go)."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for reminder e-mails (unset: e-mail off)."
    )
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_from: str = Field(default="govhub@localhost", description="Sender of reminder e-mails.")
    smtp_user: str | None = Field(default=None, description="SMTP login (optional).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade SMTP with STARTTLS.")
    reminder_webhook_url: str | None = Field(
        default=None, description="Endpoint that receives signed clock reminders (optional)."
    )
    reminder_webhook_secret: str | None = Field(
        default=None, repr=False, description="HMAC-SHA256 key signing reminder webhooks."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        exclude=True,  # never in a dump of the settings (connectors are built from one)
        description="Bearer token of GET /metrics (Prometheus); unset: /metrics is off (404).",
    )
    metrics_dir: str = Field(
        default=str(VAR_DIR / "metrics"),
        description=(
            "Folder where every process of this host (web, worker, beat) records its counters "
            "for /metrics (prometheus-client's multiprocess mode); empty: each process only "
            "its own, in memory."
        ),
    )

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.env == "production":
            problems = []
            if not self.secret_key or self.secret_key == DEV_SECRET_KEY:
                problems.append("GOVHUB_SECRET_KEY")
            keys = [k.strip() for k in self.credentials_key.split(",") if k.strip()]
            if not keys or keys[0] == DEV_CREDENTIALS_KEY:
                problems.append("GOVHUB_CREDENTIALS_KEY")
            if problems:
                raise InsecureSettingsError(
                    "production refuses to start with a default or missing secret: set "
                    + ", ".join(problems)
                )
        return self

    @field_validator("weibo_fallback_rip")
    @classmethod
    def _fallback_rip_is_an_ip(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(
                    f"GOVHUB_WEIBO_FALLBACK_RIP must be an IP address such as 211.156.0.1, "
                    f"not {value!r}"
                ) from None
        return value

    @model_validator(mode="after")
    def _proxies_and_keys_are_well_formed(self) -> Settings:
        from cryptography.fernet import Fernet

        self.trusted_networks  # noqa: B018 - raises on a malformed entry
        for key in (k.strip() for k in self.credentials_key.split(",")):
            try:
                Fernet(key.encode())
            except ValueError:
                raise ValueError(
                    "GOVHUB_CREDENTIALS_KEY: every key must be a Fernet key (32 url-safe "
                    "base64-encoded bytes; `govhub secrets new-key` prints one)"
                ) from None
        return self

    @model_validator(mode="after")
    def _reminder_webhook_needs_a_secret(self) -> Settings:
        if self.reminder_webhook_url and not self.reminder_webhook_secret:
            raise ValueError(
                "GOVHUB_REMINDER_WEBHOOK_URL is set: set GOVHUB_REMINDER_WEBHOOK_SECRET too "
                "(reminders are signed)"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("GOVHUB_METRICS_TOKEN must be at least 16 characters long")
        return value

    @property
    def trusted_networks(self) -> list[IPv4Network | IPv6Network]:
        try:
            return [
                ip_network(part.strip(), strict=False)
                for part in self.trusted_proxies.split(",")
                if part.strip()
            ]
        except ValueError as exc:
            raise ValueError(f"GOVHUB_TRUSTED_PROXIES: {exc}") from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def policies(self) -> list[str]:
        return [p.strip() for p in self.policy.split(",") if p.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
