"""Micro-live rules: fan-out pacing under Weibo's limit, merged wording, SSE framing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.weibo_rules import weibo_length
from hub.errors import Conflict
from hub.live import rules
from hub.live.models import LiveStatus
from hub.web import i18n

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
HALL = "http://hall.test/hall/posts/123"
LIVE = "http://hall.test/live/20261201-abc#e7"


def simulate(
    event_times: list[datetime], *, until: datetime, tick: timedelta = timedelta(seconds=3)
) -> tuple[list[tuple[datetime, tuple[int, ...]]], dict[int, datetime]]:
    """Run the rule as the beat task does (every ``tick``); returns the sends and event times."""
    sends: list[tuple[datetime, tuple[int, ...]]] = []
    created = {seq: at for seq, at in enumerate(event_times, 1)}
    done: set[int] = set()
    now = event_times[0]
    while now <= until:
        pending = [
            rules.Pending(seq, at, f"要点{seq}")
            for seq, at in created.items()
            if at <= now and seq not in done
        ]
        decision = rules.fanout_decision(
            recent_sends=[at for at, _ in sends], pending=pending, now=now, per_hour=30
        )
        if isinstance(decision, rules.Send):
            sends.append((now, decision.seqs))
            done.update(decision.seqs)
        now += tick
    return sends, created


def test_forty_key_events_in_ten_minutes_never_exceed_the_pace_and_lose_none() -> None:
    events = [T0 + timedelta(seconds=15 * i) for i in range(40)]
    sends, created = simulate(events, until=T0 + timedelta(hours=3))
    sent = [seq for _, seqs in sends for seq in seqs]
    assert sorted(sent) == list(range(1, 41))  # every key event, exactly once
    assert rules.sends_in_any_window([at for at, _ in sends]) <= 30
    assert any(len(seqs) > 1 for _, seqs in sends)  # some were merged
    for at, seqs in sends:
        for seq in seqs:
            assert at - created[seq] <= timedelta(minutes=10)


def test_a_steady_stream_for_three_hours_stays_under_the_limit_and_within_ten_minutes() -> None:
    events = [T0 + timedelta(seconds=40 * i) for i in range(270)]  # 90 per hour
    sends, created = simulate(events, until=T0 + timedelta(hours=4))
    assert sorted(seq for _, seqs in sends for seq in seqs) == list(range(1, 271))
    assert rules.sends_in_any_window([at for at, _ in sends]) <= 30
    assert max(at - created[s] for at, seqs in sends for s in seqs) <= timedelta(minutes=10)


def test_a_quiet_session_sends_each_key_event_alone_and_at_once() -> None:
    events = [T0 + timedelta(minutes=5 * i) for i in range(6)]
    sends, created = simulate(events, until=T0 + timedelta(hours=1))
    assert [seqs for _, seqs in sends] == [(i,) for i in range(1, 7)]
    assert all(at - created[seqs[0]] < timedelta(seconds=3) for at, seqs in sends)


def test_a_window_filled_by_other_posts_waits_for_the_oldest_to_leave() -> None:
    others = [T0 + timedelta(minutes=i) for i in range(30)]
    now = T0 + timedelta(minutes=31)
    decision = rules.fanout_decision(
        recent_sends=others, pending=[rules.Pending(1, now, "x")], now=now, per_hour=30
    )
    assert decision == rules.Wait(T0 + timedelta(hours=1))


def test_nothing_pending_means_nothing_to_do() -> None:
    assert rules.fanout_decision(recent_sends=[], pending=[], now=T0, per_hour=30) is None


def test_merged_text_carries_every_event_when_it_fits() -> None:
    text = rules.weibo_text(
        title="省政府常务会议",
        events=["会议通过A。", "会议部署B。"],
        hall_link=HALL,
        live_link=LIVE,
    )
    assert "会议通过A。" in text and "会议部署B。" in text
    assert weibo_length(f"{text} {HALL}") <= 140


def test_merged_text_too_long_links_to_the_live_page_anchor() -> None:
    events = [f"第{i}项要点：" + "全省政务公开工作取得新进展" * 3 for i in range(12)]
    text = rules.weibo_text(title="省政府常务会议", events=events, hall_link=HALL, live_link=LIVE)
    assert LIVE in text and "共12条要点" in text
    assert weibo_length(f"{text} {HALL}") <= 140
    assert weibo_length(f"{text} {HALL}", https_as_url=False) <= 140


def test_merged_body_keeps_every_event_in_full() -> None:
    events = [(i, "要点" * 50 + str(i)) for i in range(1, 21)]
    body = rules.merged_body(events, "http://hall.test/live/x")
    assert all(text in body and f"#e{seq}" in body for seq, text in events)


def test_sse_frame_is_one_message_with_id_and_single_line_data() -> None:
    frame = rules.sse_frame(7, "entry", {"text": "第一行\n第二行"})
    assert frame.decode() == 'id: 7\nevent: entry\ndata: {"text":"第一行\\n第二行"}\n\n'
    assert rules.sse_frame(None, "presence", {}).startswith(b"event: presence\n")


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("", 0), ("12", 12), ("x", 0)])
def test_last_event_id_parsing(value: str | None, expected: int) -> None:
    assert rules.parse_last_event_id(value) == expected


def test_status_moves() -> None:
    assert rules.next_status("start", LiveStatus.scheduled) is LiveStatus.live
    assert rules.next_status("end", LiveStatus.live) is LiveStatus.ended
    with pytest.raises(Conflict) as refused:
        rules.next_status("start", LiveStatus.ended)
    assert refused.value.message == "微直播当前状态为「已结束」，不能开播"
    english = refused.value.translate(i18n.translations("en").gettext)
    assert english == "A live session in the state “Ended” cannot start"
    assert not rules.accepts_entries(LiveStatus.ended)
