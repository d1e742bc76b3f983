from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.cli import app


def test_operator_sees_and_steers_deliveries_from_the_command_line(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    account = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    ).json()["id"]
    post = client.post(
        "/api/v1/posts",
        json={"title": "凯里通告", "body": "正文", "target_account_ids": [account]},
        headers=auth["kaili-editor"],
    ).json()["id"]
    client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"])
    client.post(f"/api/v1/posts/{post}/approve", headers=auth["kaili-reviewer"])

    runner = CliRunner()
    listed = runner.invoke(app, ["posts", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{post}\tpublishing\t凯里通告\tqueued 1" in listed.output
    shown = json.loads(runner.invoke(app, ["posts", "show", str(post)]).output)
    delivery = shown["deliveries"][0]["id"]
    assert shown["status"] == "publishing" and shown["deliveries"][0]["status"] == "queued"

    assert runner.invoke(app, ["deliveries", "cancel", str(delivery)]).exit_code == 0
    refused = runner.invoke(
        app, ["deliveries", "mark-published", str(delivery), "https://weibo.com/1/abc"]
    )
    assert refused.exit_code == 1 and "不能标记为已发布" in refused.output
    assert runner.invoke(app, ["deliveries", "retry", str(delivery)]).exit_code == 0
    again = json.loads(runner.invoke(app, ["posts", "show", str(post)]).output)
    assert again["deliveries"][0]["status"] == "queued"
    missing = runner.invoke(app, ["posts", "show", "999"])
    assert missing.exit_code == 1 and "999" in missing.output
