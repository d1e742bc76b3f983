"""WeChat: a lost submit answer is found, never resubmitted; publish and push (群发).

The connector against the WeChat sandbox over real HTTP. The sandbox can keep a submitted draft
in the draft box until its publish job ends (``draft_leaves="finish"``) and its jobs can be made
long (``publish_delay``) and then ended on demand (``finish_jobs``): nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Pending, Published, Rendition
from connectors.errors import Rejected, Transient
from connectors.sandbox.server import RunningServer
from connectors.sandbox.wechat import Fault, WechatSandbox, mass_event_xml
from connectors.wechat import SubmitUnconfirmed, matches_submission, parse_mass_event
from tests.contract.harness_wechat import (
    Recorder,
    WechatHarness,
    recorder_server,
    wait_for,
    wechat,
    wechat_server,
)

__all__ = ["recorder_server", "wechat", "wechat_server"]  # fixtures used by this module

pytestmark = pytest.mark.contract


@pytest.fixture
def slow_jobs(wechat_server: tuple[WechatSandbox, RunningServer]) -> Iterator[WechatSandbox]:
    """Publish jobs that take a minute and keep their draft in the box until they end."""
    sandbox, _ = wechat_server
    sandbox.configure(draft_leaves="finish", publish_delay=60.0)
    yield sandbox
    sandbox.configure(draft_leaves="submit", publish_delay=0.05)


def pushed(wechat: WechatHarness, **meta: str) -> Rendition:
    rendition = wechat.wechat.render(wechat.content())
    return dataclasses.replace(rendition, meta={**rendition.meta, "wechat.mode": "push", **meta})


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=5), now + timedelta(minutes=15)


# -- a lost freepublish/submit answer ------------------------------------------------------------


def test_the_draft_stays_in_the_box_while_the_job_runs_so_it_proves_nothing(
    wechat: WechatHarness, slow_jobs: WechatSandbox
) -> None:
    slow_jobs.add_fault(
        Fault("/cgi-bin/freepublish/submit", mode="drop", count=1, appid=wechat.appid)
    )
    connector, account = wechat.wechat, wechat.account()
    rendition = connector.render(wechat.content())
    with pytest.raises(SubmitUnconfirmed) as caught:
        connector.publish(account, rendition, idempotency_key="k")
    # The platform took the submission, yet the draft is still there and nothing is listed:
    # exactly the state in which a resubmission would publish the article twice.
    assert connector.draft_exists(account, caught.value.draft_media_id)
    since, until = window()
    look = {"title": rendition.title, "digest": rendition.digest, "since": since, "until": until}
    assert connector.find_publication(account, **look) is None

    assert slow_jobs.finish_jobs(wechat.appid) == 1
    found = connector.find_publication(account, **look)
    assert found is not None
    assert found.url.startswith("http://mp.weixin.qq.com/s/")
    state = slow_jobs.state(wechat.appid)
    assert [p["article_id"] for p in state["publications"]] == [found.remote_id]
    assert state["drafts"] == [], "the draft leaves the box when its job ends"


def test_find_publication_wants_our_title_digest_window_and_an_unclaimed_article(
    wechat: WechatHarness,
) -> None:
    connector, account = wechat.wechat, wechat.account()
    rendition = connector.render(wechat.content())
    _ref, published = wechat.publish_and_wait()
    since, until = window()
    look = {"title": rendition.title, "since": since, "until": until}
    assert connector.find_publication(account, digest=rendition.digest, **look) is not None
    assert connector.find_publication(account, digest="另一条摘要", **look) is None
    claimed = frozenset({published.remote_id})
    assert (
        connector.find_publication(account, digest=rendition.digest, exclude=claimed, **look)
        is None
    )
    later = {"since": until, "until": until + timedelta(minutes=10)}
    assert (
        connector.find_publication(account, title=rendition.title, digest=rendition.digest, **later)
        is None
    )


def test_matches_submission_compares_title_digest_and_time() -> None:
    at = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    ours = {"title": "防汛通知", "digest": "摘要", "since": at, "until": at + timedelta(hours=1)}
    assert matches_submission(listed_title="防汛通知", listed_digest="摘要", listed_at=at, **ours)
    assert matches_submission(listed_title="防汛通知 ", listed_digest="", listed_at=at, **ours)
    assert not matches_submission(
        listed_title="防汛通知", listed_digest="别的", listed_at=at, **ours
    )
    assert not matches_submission(
        listed_title="防汛通知", listed_digest="摘要", listed_at=at - timedelta(seconds=1), **ours
    )


# -- publish and push (群发) ----------------------------------------------------------------------


def test_push_mass_sends_the_draft_with_the_clientmsgid_and_settles_by_mass_get(
    wechat: WechatHarness, slow_jobs: WechatSandbox
) -> None:
    connector, account = wechat.wechat, wechat.account()
    outcome = connector.publish(account, pushed(wechat), idempotency_key="7:1:3")
    assert isinstance(outcome, Pending)
    assert outcome.ref.startswith("mass:")
    assert outcome.meta["msg_data_id"]
    [job] = slow_jobs.mass_jobs(wechat.appid)
    assert job["clientmsgid"] == "7:1:3"
    assert job["titles"] == ["关于做好防汛工作的通知"]
    assert slow_jobs.state(wechat.appid)["publications"] == [], "a push is not a freepublish"
    assert isinstance(connector.poll(account, outcome.ref), Pending)  # SENDING

    slow_jobs.finish_jobs(wechat.appid)
    done = connector.poll(account, outcome.ref)
    assert isinstance(done, Published)
    assert done.remote_id == outcome.ref


def test_a_push_sent_again_with_the_same_clientmsgid_is_the_same_push(
    wechat: WechatHarness,
) -> None:
    connector, account = wechat.wechat, wechat.account()
    first = connector.publish(account, pushed(wechat), idempotency_key="8:1:3")
    again = connector.publish(account, pushed(wechat), idempotency_key="8:1:3")  # 45065
    assert isinstance(first, Pending) and isinstance(again, Pending)
    assert again.ref == first.ref
    assert len(wechat.sandbox.mass_jobs(wechat.appid)) == 1


def test_a_lost_sendall_answer_is_transient_and_the_resend_pushes_once(
    wechat: WechatHarness,
) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/message/mass/sendall", mode="drop", count=1, appid=wechat.appid)
    )
    connector, account = wechat.wechat, wechat.account()
    with pytest.raises(Transient):
        connector.publish(account, pushed(wechat), idempotency_key="9:1:3")
    outcome = connector.publish(account, pushed(wechat), idempotency_key="9:1:3")
    assert isinstance(outcome, Pending)
    [job] = wechat.sandbox.mass_jobs(wechat.appid)
    assert outcome.ref == f"mass:{job['msg_id']}"


def test_a_subscription_account_pushes_once_a_day(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    connector.publish(account, pushed(wechat), idempotency_key="10:1:3")
    with pytest.raises(Rejected) as caught:
        connector.publish(account, pushed(wechat), idempotency_key="11:1:3")
    assert caught.value.code == "45028"
    assert "群发次数已用完" in str(caught.value)


def test_a_service_account_pushes_four_times_a_month(
    wechat_server: tuple[WechatSandbox, RunningServer], wechat: WechatHarness
) -> None:
    sandbox, _ = wechat_server
    appid = f"wx{uuid.uuid4().hex[:16]}"
    harness = WechatHarness(
        sandbox, wechat.base_url, wechat.client, wechat.tmp_path, appid, "s3cret"
    )
    sandbox.add_app(appid, "s3cret", kind="service")  # the harness registered a subscription one
    for n in range(4):
        harness.wechat.publish(harness.account(), pushed(harness), idempotency_key=f"s{n}")
    with pytest.raises(Rejected):
        harness.wechat.publish(harness.account(), pushed(harness), idempotency_key="s4")
    assert len(sandbox.mass_jobs(appid)) == 4


def test_retry_too_fast_is_transient_after_a_minute(wechat: WechatHarness) -> None:
    wechat.sandbox.add_fault(
        Fault("/cgi-bin/message/mass/sendall", errcode=45066, appid=wechat.appid)
    )
    with pytest.raises(Transient) as caught:
        wechat.wechat.publish(wechat.account(), pushed(wechat), idempotency_key="12:1:3")
    assert caught.value.retry_after == 60.0


def test_a_failed_push_is_rejected_with_the_reason(
    wechat: WechatHarness, slow_jobs: WechatSandbox
) -> None:
    slow_jobs.queue_mass_outcome(wechat.appid, "err(20001)")
    connector, account = wechat.wechat, wechat.account()
    outcome = connector.publish(account, pushed(wechat), idempotency_key="13:1:3")
    assert isinstance(outcome, Pending)
    slow_jobs.finish_jobs(wechat.appid)
    with pytest.raises(Rejected) as caught:
        connector.poll(account, outcome.ref)
    assert caught.value.reason == "群发失败（SEND_FAIL）"
    # the event says why, in the platform's code: the hub words it
    event = parse_mass_event(
        mass_event_xml(to_user="gh_x", msg_id=1, status="err(20001)", total=0, sent=0, urls=[])
    )
    assert event is not None
    with pytest.raises(Rejected) as from_event:
        event.outcome()
    assert from_event.value.reason == "群发失败：涉嫌政治（err(20001)）"


def test_masssendjobfinish_reaches_the_callback_and_agrees_with_mass_get(
    wechat: WechatHarness, recorder_server: tuple[Recorder, RunningServer]
) -> None:
    recorder, server = recorder_server
    path = f"/cb/{wechat.appid}"
    wechat.sandbox.set_callback(wechat.appid, server.base_url + path, "cbtoken")
    connector, account = wechat.wechat, wechat.account()
    outcome = connector.publish(account, pushed(wechat), idempotency_key="14:1:3")
    assert isinstance(outcome, Pending)
    [hit] = wait_for(lambda: recorder.hits(path))
    event = parse_mass_event(hit["body"])
    assert event is not None
    assert f"mass:{event.msg_id}" == outcome.ref
    assert event.status == "send success"
    from_event = event.outcome()
    assert isinstance(from_event, Published)
    assert from_event.remote_url.startswith("http://mp.weixin.qq.com/s/")
    from_poll = connector.poll(account, outcome.ref)
    assert isinstance(from_poll, Published)
    assert from_poll.remote_id == from_event.remote_id


def test_comments_choice_reaches_draft_add(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    rendition = connector.render(wechat.content())
    for comments, expected in (("fans", (1, 1)), ("open", (1, 0)), ("closed", (0, 0))):
        with_choice = dataclasses.replace(rendition, meta={"wechat.comments": comments})
        connector.publish(account, with_choice, idempotency_key=comments)
        received = wechat.sandbox.state(wechat.appid)["publications"][-1]["received"][0]
        assert (received["need_open_comment"], received["only_fans_can_comment"]) == expected


def test_withdrawing_a_push_deletes_the_mass_send(wechat: WechatHarness) -> None:
    connector, account = wechat.wechat, wechat.account()
    outcome = connector.publish(account, pushed(wechat), idempotency_key="15:1:3")
    assert isinstance(outcome, Pending)
    done = wait_for(lambda: _published(connector.poll(account, outcome.ref)))
    connector.withdraw(account, done.remote_id)
    assert wechat.sandbox.state(wechat.appid)["mass_jobs"] == {
        outcome.ref.removeprefix("mass:"): "DELETE"
    }
    with pytest.raises(Rejected):
        connector.poll(account, outcome.ref)


def _published(outcome: object) -> Published | None:
    return outcome if isinstance(outcome, Published) else None
