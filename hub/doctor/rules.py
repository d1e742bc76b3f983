"""What `govhub doctor` concludes from what it saw: pure functions, no I/O, no clock.

Each check yields :class:`Finding` rows — a subject, a level (``ok``, ``warn``, ``error``) and, for
anything but ``ok``, what the operator must do, in Chinese: the people who run a press office's
hub read these on day one, and each line must say which console to open and what to change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from hub.platforms import official_api_bases


class Level(StrEnum):
    ok = "ok"
    warn = "warn"
    error = "error"


@dataclass(frozen=True)
class Finding:
    area: str  # "deployment" | "account"
    subject: str  # what was checked, e.g. "公网地址" or "微博 · 省政府新闻办"
    level: Level
    message: str
    fix: str = ""


def ok(area: str, subject: str, message: str) -> Finding:
    return Finding(area, subject, Level.ok, message)


def worst(findings: Iterable[Finding]) -> Level:
    levels = {f.level for f in findings}
    if Level.error in levels:
        return Level.error
    return Level.warn if Level.warn in levels else Level.ok


# -- deployment -------------------------------------------------------------------------------

SANDBOX_WEIBO_APP_KEY = "govhub-sandbox"


@dataclass(frozen=True)
class DeploymentFacts:
    """The settings the doctor judges, copied out of :class:`hub.config.Settings`."""

    production: bool
    secret_key_default: bool
    credentials_key_default: bool
    credentials_key_valid: bool
    public_base_url: str
    weibo_app_key: str
    api_bases: Mapping[str, str]
    database_url: str
    broker_url: str
    redis_url: str | None


def _is_local_host(host: str) -> bool:
    if host in {"localhost", ""} or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def check_deployment(facts: DeploymentFacts) -> list[Finding]:
    """Secrets, the public URL and the platform settings a first real post depends on."""
    area = "deployment"
    out: list[Finding] = []
    serious = Level.error if facts.production else Level.warn

    if facts.production:
        out.append(ok(area, "运行模式", "GOVHUB_ENV=production"))
    else:
        out.append(
            Finding(
                area,
                "运行模式",
                Level.warn,
                "开发模式（GOVHUB_ENV=development）：允许默认密钥，不适合正式上线",
                "正式环境设置 GOVHUB_ENV=production",
            )
        )

    for name, is_default in (
        ("GOVHUB_SECRET_KEY", facts.secret_key_default),
        ("GOVHUB_CREDENTIALS_KEY", facts.credentials_key_default),
    ):
        if is_default:
            out.append(
                Finding(
                    area,
                    name,
                    serious,
                    "仍是开发用默认值",
                    f"生成新的随机值并设置 {name}（见 README「Settings」）",
                )
            )
        else:
            out.append(ok(area, name, "已设置"))
    if not facts.credentials_key_valid:
        out.append(
            Finding(
                area,
                "GOVHUB_CREDENTIALS_KEY",
                Level.error,
                "不是有效的 Fernet 密钥（32 字节的 urlsafe base64）",
                "用 python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())' 生成",
            )
        )

    url = urlsplit(facts.public_base_url)
    host = url.hostname or ""
    if url.scheme not in {"http", "https"} or not host:
        out.append(
            Finding(
                area,
                "GOVHUB_PUBLIC_BASE_URL",
                Level.error,
                f"公网地址「{facts.public_base_url}」不是有效的 http(s) 地址",
                "设置为发布厅对外的地址，例如 https://fabu.example.gov.cn",
            )
        )
    else:
        if _is_local_host(host):
            out.append(
                Finding(
                    area,
                    "GOVHUB_PUBLIC_BASE_URL",
                    serious,
                    f"公网地址指向本机或内网（{host}）：微博正文里的链接和发布厅对公众不可达，"
                    "微博会以 10017（不在安全域名内）拒绝",
                    "设置为公众可访问的域名，并在微博开放平台把该域名登记为安全域名",
                )
            )
        elif url.scheme != "https":
            out.append(
                Finding(
                    area,
                    "GOVHUB_PUBLIC_BASE_URL",
                    serious,
                    "公网地址使用 http：登录会话和公众页面未加密",
                    "在反向代理上启用 HTTPS，并把 GOVHUB_PUBLIC_BASE_URL 改为 https://",
                )
            )
        else:
            out.append(ok(area, "GOVHUB_PUBLIC_BASE_URL", facts.public_base_url))

    if facts.weibo_app_key == SANDBOX_WEIBO_APP_KEY:
        out.append(
            Finding(
                area,
                "GOVHUB_WEIBO_APP_KEY",
                serious,
                "微博应用仍是模拟器的默认值：无法通过 OAuth 绑定真实微博账号",
                "在 open.weibo.com 创建网站应用并通过审核，设置 GOVHUB_WEIBO_APP_KEY 和 "
                "GOVHUB_WEIBO_APP_SECRET，回调地址填 <公网地址>/oauth/weibo/callback",
            )
        )
    else:
        out.append(ok(area, "GOVHUB_WEIBO_APP_KEY", "已设置"))

    for platform, base in sorted(facts.api_bases.items()):
        official = official_api_bases().get(platform)
        if official and base.rstrip("/") != official:
            setting = f"GOVHUB_{platform.upper()}_API_BASE"
            out.append(
                Finding(
                    area,
                    setting,
                    serious,
                    f"指向 {base}，不是平台的正式地址 {official}（模拟器或代理）",
                    f"正式环境去掉 {setting}，或确认代理会原样转发到 {official}",
                )
            )

    if facts.production and facts.database_url.startswith("sqlite"):
        out.append(
            Finding(
                area,
                "GOVHUB_DATABASE_URL",
                Level.warn,
                "正式环境使用 SQLite：只适合单机演示",
                "使用 PostgreSQL（compose.yaml 的默认）",
            )
        )
    if facts.production and facts.broker_url.startswith("sqla+"):
        out.append(
            Finding(
                area,
                "GOVHUB_BROKER_URL",
                Level.warn,
                "正式环境使用内嵌的数据库消息队列",
                "使用 Redis（GOVHUB_BROKER_URL=redis://...，compose.yaml 的默认）",
            )
        )
    if facts.production and not facts.redis_url:
        out.append(
            Finding(
                area,
                "GOVHUB_REDIS_URL",
                Level.warn,
                "未配置 Redis：令牌缓存、限速和微直播推送退回数据库，多进程时更慢",
                "设置 GOVHUB_REDIS_URL",
            )
        )
    return out


def check_migrations(current: str | None, heads: Iterable[str]) -> Finding:
    area, subject = "deployment", "数据库结构"
    expected = ",".join(sorted(heads))
    if current == expected:
        return ok(area, subject, f"迁移已到最新（{expected}）")
    return Finding(
        area,
        subject,
        Level.error,
        f"数据库迁移不是最新：当前 {current or '（空库）'}，应为 {expected}",
        "运行 govhub db upgrade",
    )


HEARTBEAT_LABELS = {"worker": "发布进程（govhub worker）", "beat": "定时进程（govhub beat）"}


def check_heartbeats(
    beats: Mapping[str, datetime], *, now: datetime, stale_after: timedelta
) -> list[Finding]:
    out = []
    for name, label in HEARTBEAT_LABELS.items():
        at = beats.get(name)
        if at is None:
            out.append(
                Finding(
                    "deployment",
                    label,
                    Level.warn,
                    "从未报到：定时稿件和投递不会发出",
                    f"启动 govhub {name}",
                )
            )
        elif now - at > stale_after:
            minutes = int((now - at).total_seconds() // 60)
            out.append(
                Finding(
                    "deployment",
                    label,
                    Level.error,
                    f"已 {minutes} 分钟没有心跳",
                    f"检查 govhub {name} 是否在运行，以及它能否连上消息队列",
                )
            )
        else:
            out.append(ok("deployment", label, "心跳正常"))
    return out


# -- accounts ---------------------------------------------------------------------------------


def check_token_expiry(subject: str, expires_at: datetime | None, *, now: datetime) -> Finding:
    """An OAuth token's expiry (Weibo: ordinary apps cannot refresh it server-side)."""
    if expires_at is None:
        return ok("account", subject, "令牌无到期时间")
    if expires_at <= now:
        return Finding(
            "account",
            subject,
            Level.error,
            "授权已过期：发往该账号的稿件会被挂起",
            "在「账号」页点「重新授权」，用该微博账号登录并同意授权",
        )
    if expires_at - now <= timedelta(days=7):
        days = max(0, (expires_at - now).days)
        return Finding(
            "account",
            subject,
            Level.warn,
            f"授权将在 {days} 天内过期",
            "在「账号」页点「重新授权」",
        )
    return ok("account", subject, f"授权有效至 {expires_at:%Y-%m-%d}")


def check_wechat_callback(subject: str, *, url: str, token: bool, aes_key: bool) -> list[Finding]:
    """The account's server configuration (服务器配置): callback token and safe-mode key."""
    if not token:
        return [
            Finding(
                "account",
                subject,
                Level.warn,
                "未配置服务器回调：发布结果只能靠轮询得知，粉丝留言收不到",
                f"在公众号后台「设置与开发 → 基本配置 → 服务器配置」填服务器地址 {url}、令牌（Token）"
                "和消息加解密密钥（EncodingAESKey），选「安全模式」，并把令牌和密钥填入 govhub "
                "账号凭据（callback_token、encoding_aes_key）；注意启用服务器配置后，后台编辑的"
                "自动回复和自定义菜单会失效",
            )
        ]
    if not aes_key:
        return [
            Finding(
                "account",
                subject,
                Level.warn,
                "服务器回调未配置消息加解密密钥：只能用明文模式，回调内容未加密",
                "在公众号后台生成 EncodingAESKey 并选「安全模式」，同一密钥填入 govhub 账号凭据"
                "（encoding_aes_key）",
            )
        ]
    return [ok("account", subject, "服务器回调已配置（可用安全模式）")]
