"""WeChat's MASSSENDJOBFINISH event settles a pushed (群发) delivery, as message/mass/get would.

The sandbox POSTs the signed event to the hub served on loopback; replays go through the same
route from the test. Fixtures and helpers are those of ``test_wechat_callbacks``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from connectors.base import Pending, Published
from connectors.sandbox.wechat import mass_event_xml
from hub.db import engine_for
from hub.delivery.models import DeliveryStatus
from hub.inbox.models import Case
from tests.integration.test_wechat_callbacks import (
    CALLBACK_TOKEN,
    Wechat,
    _content,
    _delivery,
    _pending_delivery,
    _signed,
    wechat,
)

__all__ = ["wechat"]  # the fixture used by this module


def _push(wechat: Wechat, tmp_path: Path, key: str = "k-push") -> tuple[int, str]:
    """Push through the connector; the delivery row holds the ref before the job ends."""
    connector, account = wechat.connector, wechat.connector_account()
    rendition = connector.render(_content(tmp_path))
    rendition = dataclasses.replace(rendition, meta={"wechat.mode": "push"})
    outcome = connector.publish(account, rendition, idempotency_key=key)
    assert isinstance(outcome, Pending)
    delivery_id = _pending_delivery(wechat, outcome.ref)
    wechat.sandbox.set_callback(
        wechat.appid, wechat.hub.base_url + wechat.callback_url(), CALLBACK_TOKEN
    )
    return delivery_id, outcome.ref.removeprefix("mass:")


def _cases(wechat: Wechat) -> int:
    with Session(engine_for(wechat.database_url)) as session:
        return len(session.exec(select(Case)).all())


def test_the_event_publishes_the_pushed_delivery_once_and_agrees_with_mass_get(
    wechat: Wechat, client: TestClient, tmp_path: Path
) -> None:
    delivery_id, msg_id = _push(wechat, tmp_path)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    [sent] = wechat.sandbox.state(wechat.appid)["callbacks"]
    assert (sent["status_code"], sent["body"]) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.published
    assert delivery.remote_id == f"mass:{msg_id}"
    assert delivery.remote_url.startswith("http://mp.weixin.qq.com/s/")
    polled = wechat.connector.poll(wechat.connector_account(), f"mass:{msg_id}")
    assert isinstance(polled, Published)
    assert polled.remote_id == delivery.remote_id
    assert _cases(wechat) == 0, "a platform event is not a follower's message"

    # The platform repeats events; a late or contradictory one changes nothing.
    for status in ("send success", "err(20001)"):
        body = mass_event_xml(
            to_user="gh_test", msg_id=int(msg_id), status=status, total=1, sent=1, urls=[]
        )
        again = client.post(wechat.callback_url(), params=_signed(), content=body)
        assert (again.status_code, again.text) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.published
    assert [a.action for a in attempts] == ["callback"]


def test_a_refused_push_fails_the_delivery_with_the_reason_in_words(
    wechat: Wechat, tmp_path: Path
) -> None:
    wechat.sandbox.queue_mass_outcome(wechat.appid, "err(10001)")
    delivery_id, _ = _push(wechat, tmp_path)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    delivery, _ = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.failed
    assert delivery.error == "群发失败：涉嫌广告（err(10001)）"


def test_an_unknown_msg_id_is_acknowledged_without_change(
    wechat: Wechat, client: TestClient
) -> None:
    delivery_id = _pending_delivery(wechat, "mass:1000001")
    body = mass_event_xml(
        to_user="gh_test", msg_id=1000002, status="send success", total=1, sent=1, urls=[]
    )
    answer = client.post(wechat.callback_url(), params=_signed(), content=body)
    assert (answer.status_code, answer.text) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    assert delivery.status is DeliveryStatus.pending
    assert attempts == []
    assert _cases(wechat) == 0
