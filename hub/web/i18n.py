"""Interface language: zh-CN by default, English from a gettext catalog (hub/i18n/<locale>/).

Templates use Jinja2's i18n extension (``{{ _("工作台") }}``, message ids are the Chinese text).
The catalogs are ordinary gettext ``.po`` files, compiled with Babel when first used, so there is
no build step: ``make i18n`` re-extracts the messages (pybabel) and merges them into the catalogs.
The chosen language sticks in the ``govhub_lang`` cookie; a user's stored ``locale`` is the
fallback.
"""

from __future__ import annotations

import gettext
from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

from hub import platforms
from hub.errors import HubError

CATALOG_DIR = Path(__file__).resolve().parents[1] / "i18n"
DOMAIN = "messages"
DEFAULT_LOCALE = "zh_CN"
LOCALES = {"zh_CN": "中文", "en": "English"}
COOKIE = "govhub_lang"

_current: ContextVar[str] = ContextVar("govhub_locale", default=DEFAULT_LOCALE)


def normalise(value: str | None) -> str | None:
    """``zh-CN``/``zh_cn``/``en-GB`` → a supported locale, or None."""
    if not value:
        return None
    value = value.replace("-", "_")
    for locale in LOCALES:
        if value.lower() == locale.lower() or value.lower().split("_")[0] == locale.lower():
            return locale
    if value.lower().startswith("zh"):
        return "zh_CN"
    return None


@lru_cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of ``locale`` (the Chinese message ids need none)."""
    po = CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def locale_of(request: Request, user_locale: str | None = None) -> str:
    return normalise(request.cookies.get(COOKIE)) or normalise(user_locale) or DEFAULT_LOCALE


def request_locale(request: Request) -> str:
    """The language of this request: the cookie, else its user's stored ``locale`` (put in the
    scope by the page and API dependencies), else Chinese."""
    user = request.scope.get("govhub_user_locale")
    return locale_of(request, user if isinstance(user, str) else None)


def error_text(exc: HubError, request: Request | None = None) -> str:
    """A domain error's message in the reader's language: the request's when given, else the
    current one. The exception keeps its source-language ``message`` (logs, audit, CLI)."""
    locale = request_locale(request) if request is not None else _current.get()
    return exc.translate(translations(locale).gettext)


def use_locale(locale: str) -> None:
    _current.set(locale)


def current_locale() -> str:
    return _current.get()


def _(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it now."""
    return message


# Messages the page scripts show (hub/static/js); sent to the page as JSON in its language.
JS_MESSAGES = [
    # the live console (live-console.js, live.js)
    N_("编辑"),
    N_("修改内容"),
    N_("更正说明（公开显示）"),
    N_("删除"),
    N_("删除原因（公开显示）"),
    N_("取消要点"),
    N_("标为要点"),
    N_("取消置顶"),
    N_("置顶"),
    N_("发布中…"),
    N_("校对提示：%(hits)s"),
    N_("已发布 #%(seq)s"),
    N_("已提交总编审核 #%(seq)s"),
    N_("发布失败：%(reason)s"),
    N_("结束直播？结束后将生成回顾稿并提交审核。"),
    N_("通过"),
    N_("通过，发往社交媒体"),
    N_("要点 #%(seq)s 已通过"),
    N_("要点"),
    N_("已删除"),
    N_("已删除：%(note)s"),
    N_("已更正 %(time)s"),
    N_("已更正 %(time)s：%(note)s"),
    N_("%(n)s 条新消息"),
    N_("直播已结束"),
    N_("已连接"),
    N_("已断开"),
    N_("重连中…"),
    N_("媒体库中还没有图片。"),
    N_("插入"),
    N_("已保存"),
    N_("保存中…"),
    N_("保存失败"),
    N_("有未保存的修改"),
    N_("字"),
    N_("超出"),
    N_("上传中…"),
    N_("上传失败"),
    N_("移除"),
    N_("已提交审核"),
    N_("操作失败"),
    N_("确定要取消这条投递吗？"),
    N_("已改期，改期后需重新审核"),
    N_("连接正常"),
    N_("连接失败"),
    N_("测试连接功能暂不可用"),
    N_("已更新凭据"),
    N_("请填写驳回理由"),
    N_("已批准"),
    N_("已驳回"),
    N_("已会签"),
    N_("没有问题"),
    N_("阻断提交"),
    N_("提示"),
    N_("未选择微博账号"),
    N_("未选择微信公众号"),
    N_("已选 %(n)s 个账号"),
    N_("分组名称"),
    N_("没有匹配的机构"),
    N_("查看"),
    N_("待发送"),
    N_("发送中"),
    N_("等待平台结果"),
    N_("已发布"),
    N_("结果未确认"),
    N_("失败"),
    N_("已暂停"),
    N_("已取消"),
    N_("已撤回"),
    N_("重试"),
    N_("取消"),
    N_("标记为已发布"),
    N_("平台链接"),
    N_("实时连接已断开，正在重连…"),
    N_("实时更新中"),
    N_("全部完成"),
    N_("请先填写标题和正文"),
    N_("全选"),
    N_("请先选择账号并填写分组名称"),
    N_("没有可选账号"),
    N_("请输入该稿件在平台上的地址"),
    N_("确定"),
    N_("仅发布（不推送）"),
    N_("群发（推送给关注者）"),
    N_("今日剩余 %(n)s 次"),
    N_("本月剩余 %(n)s 次"),
    N_("未设置公众号类型，不能群发"),
    N_("已保存公众号类型"),
    N_("群发"),
    N_("必须修改"),
    N_("替换"),
    N_("未发现错敏字"),
    N_("%(n)s 处"),
    N_("%(n)s 处必须修改"),
    N_("标题"),
    N_("正文"),
    N_("摘要"),
    N_("微博文案"),
    N_("校对"),
    N_("稿件批准后才会生成投递。"),
    N_("配图"),
    N_("停用"),
    N_("启用"),
    N_("已加入"),
    N_("已登记"),
    N_("已记录"),
    # proofreading hits' category_label (hub/proofread/rules.py CATEGORY_LABELS)
    N_("规范表述"),
    N_("敏感词"),
    N_("错别字"),
    N_("不规范用语"),
    N_("领导人"),
    N_("机构名称"),
]


def platform_label(platform: str) -> str:
    """A platform's label in the current language, as its connector declares it."""
    return platforms.label(platform, current_locale())


def platform_choices() -> list[tuple[str, str]]:
    """(key, label) of every platform, in display order, for filters and forms."""
    return [(p.value, platform_label(p.value)) for p in platforms.platforms()]


def js_messages() -> dict[str, str]:
    return {m: _(m) for m in JS_MESSAGES}


def template_context(request: Request) -> dict[str, Any]:
    """Context processor: picks the request's language for the template about to render."""
    locale = request_locale(request)
    use_locale(locale)
    return {
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh_CN" else locale,
        "locales": LOCALES,
        "js_messages": js_messages(),
        "platforms_json": platforms.script_data(locale),
    }
