"""`govhub doctor`: look at the deployment and every account, say what to fix (in Chinese).

The probes here only read: the database, the broker, Redis, and one harmless read call per
platform account (the same ``recent`` the accounts page's 测试连接 makes). The verdicts come
from :mod:`hub.doctor.rules`; platform errors are the connector's own words (its error table).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sqlmodel import Session, select

from connectors.base import Binds, Callbacks
from hub.accounts.models import Account, AccountStatus
from hub.config import DEV_CREDENTIALS_KEY, DEV_SECRET_KEY, Settings
from hub.delivery.channels import connector_for
from hub.doctor.rules import (
    DeploymentFacts,
    Finding,
    Level,
    check_deployment,
    check_heartbeats,
    check_migrations,
    check_token_expiry,
    check_wechat_callback,
    ok,
)
from hub.platforms import api_bases, info
from hub.platforms import label as platform_label
from hub.sqltypes import utcnow


def probed(platform: str) -> bool:
    """Accounts of platforms with an API (``PlatformInfo.api_base_setting``) get a read call."""
    return bool(info(platform).api_base_setting)


def _credentials_key_valid(key: str) -> bool:
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def deployment_facts(settings: Settings) -> DeploymentFacts:
    return DeploymentFacts(
        production=settings.env == "production",
        secret_key_default=settings.secret_key == DEV_SECRET_KEY,
        credentials_key_default=settings.credentials_key == DEV_CREDENTIALS_KEY,
        credentials_key_valid=_credentials_key_valid(settings.credentials_key),
        public_base_url=settings.public_base_url,
        weibo_app_key=settings.weibo_app_key,
        api_bases=api_bases(settings),
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        redis_url=settings.redis_url,
    )


def check_services(settings: Settings) -> list[Finding]:
    """Database (and its migrations), broker, Redis, media folder, worker and beat heartbeats."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from hub.db import engine_for
    from hub.migrate import alembic_config, current
    from scheduler.app import broker_reachable

    area = "deployment"
    out: list[Finding] = []
    try:
        with engine_for(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error: the database is not usable
        out.append(
            Finding(
                area,
                "数据库",
                Level.error,
                f"连不上数据库：{type(exc).__name__}: {exc}",
                "检查 GOVHUB_DATABASE_URL 和数据库服务",
            )
        )
        return out  # nothing below can be judged without it
    out.append(ok(area, "数据库", "可以连接"))
    heads = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads()
    out.append(check_migrations(current(settings.database_url), heads))

    reachable, detail = broker_reachable(settings)
    out.append(
        ok(area, "消息队列", "可以连接")
        if reachable
        else Finding(
            area,
            "消息队列",
            Level.error,
            f"连不上消息队列：{detail}",
            "检查 GOVHUB_BROKER_URL 和 Redis 服务",
        )
    )
    if settings.redis_url:
        import redis

        try:
            redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
            out.append(ok(area, "Redis", "可以连接"))
        except Exception as exc:  # redis-py raises several kinds
            out.append(
                Finding(
                    area,
                    "Redis",
                    Level.error,
                    f"连不上 Redis：{type(exc).__name__}: {exc}",
                    "检查 GOVHUB_REDIS_URL",
                )
            )

    media = Path(settings.media_dir)
    try:
        media.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=media, prefix=".doctor-"):
            pass
        out.append(ok(area, "GOVHUB_MEDIA_DIR", f"{media.resolve()} 可写"))
    except OSError as exc:
        out.append(
            Finding(
                area,
                "GOVHUB_MEDIA_DIR",
                Level.error,
                f"图片目录不可写：{exc}",
                f"创建 {media} 并让运行 govhub 的用户（uid {os.getuid()}）可写",
            )
        )
    return out


def check_processes(settings: Settings) -> list[Finding]:
    from hub.system import STALE_AFTER, last_heartbeats

    try:
        beats = last_heartbeats()
    except Exception:  # no heartbeats table yet: the migration finding already says so
        return []
    return check_heartbeats(beats, now=utcnow(), stale_after=STALE_AFTER)


def _subject(account: Account, org_name: str) -> str:
    return (
        f"{platform_label(account.platform.value)} · {org_name} · {account.name}（#{account.id}）"
    )


def check_account(*, account: Account, org_name: str, settings: Settings) -> list[Finding]:
    """Stored configuration first, then one read call to the platform."""
    from connectors.errors import ConnectorError
    from hub.accounts.health import probe
    from hub.accounts.service import credentials_of
    from hub.security import CredentialsError

    subject = _subject(account, org_name)
    out: list[Finding] = []
    if account.status == AccountStatus.needs_reauth:
        out.append(
            Finding(
                "account",
                subject,
                Level.error,
                "账号需要重新授权：发往它的稿件已挂起",
                account.attention or "在「账号」页重新授权（微博）或更新凭据（公众号）",
            )
        )
    elif account.status == AccountStatus.misconfigured:
        out.append(
            Finding(
                "account",
                subject,
                Level.error,
                "平台拒绝了该账号的配置：发往它的稿件已挂起，处理后自动继续",
                account.attention or "按平台提示处理后，在「账号」页点「测试连接」",
            )
        )
    for capability, reason in sorted((account.capabilities_off or {}).items()):
        out.append(
            Finding("account", subject, Level.warn, f"{capability} 能力不可用：{reason}", "")
        )
    connector = connector_for(account.platform.value, settings)
    if isinstance(connector, Binds):  # OAuth tokens expire and are renewed by re-binding
        out.append(check_token_expiry(subject, account.token_expires_at, now=utcnow()))
    if isinstance(connector, Callbacks):
        try:
            credentials = credentials_of(account, settings.credentials_key)
        except CredentialsError:
            credentials = {}  # reported by the probe below
        out += check_wechat_callback(
            subject,
            url=f"{settings.public_base_url.rstrip('/')}/callbacks/{account.platform}/{account.id}",
            token=bool(credentials.get("callback_token")),
            aes_key=bool(credentials.get("encoding_aes_key")),
        )
    if not probed(account.platform.value):
        return out
    try:
        posts, comments_refusal = probe(account, settings)
    except CredentialsError:
        out.append(
            Finding(
                "account",
                subject,
                Level.error,
                "凭据无法解密：GOVHUB_CREDENTIALS_KEY 与保存凭据时不同",
                "恢复原来的 GOVHUB_CREDENTIALS_KEY，或重新填写该账号的凭据",
            )
        )
        return out
    except ConnectorError as exc:
        out.append(
            Finding(
                "account",
                subject,
                Level.error,
                f"调用平台接口失败：{exc}",
                exc.platform_message or "",
            )
        )
        return out
    out.append(ok("account", subject, f"平台接口正常：读到最近 {posts} 条发布"))
    if comments_refusal and "comments" not in (account.capabilities_off or {}):
        out.append(Finding("account", subject, Level.warn, comments_refusal, ""))
    return out


def accounts_to_check(
    *, session: Session, account_ids: Iterable[int] | None = None
) -> list[tuple[Account, str]]:
    from hub.orgs.models import Org

    query = (
        select(Account, Org.name)
        .join(Org, Org.id == Account.org_id)  # type: ignore[arg-type]
        .where(Account.status != AccountStatus.closed)
        .order_by(Account.id)  # type: ignore[arg-type]
    )
    ids = list(account_ids or [])
    if ids:
        query = query.where(Account.id.in_(ids))  # type: ignore[union-attr]
    return [(account, name) for account, name in session.exec(query).all()]


def run(
    *, settings: Settings, accounts: bool = True, account_ids: Iterable[int] | None = None
) -> list[Finding]:
    from hub.db import session_scope

    findings = check_deployment(deployment_facts(settings))
    services = check_services(settings)
    findings += services
    database_ok = not any(f.subject == "数据库" and f.level == Level.error for f in services)
    if not database_ok:
        return findings
    findings += check_processes(settings)
    if accounts:
        with session_scope() as session:
            rows = accounts_to_check(session=session, account_ids=account_ids)
            for account, org_name in rows:
                findings += check_account(account=account, org_name=org_name, settings=settings)
    return findings
