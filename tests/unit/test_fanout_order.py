"""How a fan-out is put on the queues: slow copies first, follow-ups never behind a fan-out."""

from __future__ import annotations

import inspect

from hub.config import Settings
from hub.delivery.channels import costliest_first, publish_cost
from scheduler.app import QUICK_QUEUE, QUICK_TASKS, create_celery


def test_wechat_copies_are_started_before_weibo_and_hall_ones_in_their_own_order() -> None:
    targets = [(1, "weibo"), (2, "wechat"), (3, "hall"), (4, "weibo"), (5, "wechat")]
    assert costliest_first(targets) == [2, 5, 1, 3, 4]
    assert publish_cost("wechat") > publish_cost("weibo") == publish_cost("hall") == 1
    assert publish_cost("no-such-platform") == 1


def test_follow_ups_have_their_own_queue_and_a_default_worker_consumes_every_queue() -> None:
    app = create_celery(Settings(broker_url="memory://"))
    routes = app.conf.task_routes
    assert {name for name, route in routes.items() if route["queue"] == QUICK_QUEUE} == set(
        QUICK_TASKS
    )
    assert "delivery.publish" not in routes  # publishing stays on the default queue
    from hub.cli import processes

    default = inspect.signature(processes.worker).parameters["queues"].default
    consumed = set(default.split(","))
    assert consumed == {QUICK_QUEUE, app.conf.task_default_queue}
