"""A WeChat copy of a post with no image goes out with the org's default cover (issue 18),
through the real worker and the WeChat sandbox; without a default cover it is refused in words."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from hub.users.models import Role
from hub.web.app import create_app
from tests.engine.conftest import Matrix, Process, post_body
from tests.factories import make_user, token_for

pytestmark = pytest.mark.integration


def jpeg() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (900, 383), (20, 90, 160)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_post_without_an_image_goes_to_wechat_with_the_default_cover(
    matrix: Matrix, processes: Callable[..., Process]
) -> None:
    url = matrix.database_url
    (account,) = matrix.add_accounts(["522601"], ("wechat",))
    make_user(url, "kaili-editor", Role.editor, "522601")
    make_user(url, "kaili-reviewer", Role.reviewer, "522601")
    processes("worker", "--concurrency", "2")
    processes("beat")
    with TestClient(create_app()) as client:
        admin, editor = token_for("admin", url), token_for("kaili-editor", url)
        reviewer = token_for("kaili-reviewer", url)
        body = post_body(target_account_ids=[account])
        post_id = client.post("/api/v1/posts", json=body, headers=editor).json()["id"]
        refused = client.post(f"/api/v1/posts/{post_id}/submit", headers=editor)
        assert refused.status_code == 422 and "默认封面" in refused.json()["detail"]

        cover = client.post(
            "/api/v1/media", files={"file": ("封面.jpg", jpeg(), "image/jpeg")}, headers=admin
        ).json()
        put = client.put(
            "/api/v1/orgs/522601/default-cover", json={"media_id": cover["id"]}, headers=admin
        )
        assert put.status_code == 200, put.text
        assert client.post(f"/api/v1/posts/{post_id}/submit", headers=editor).status_code == 200
        approved = client.post(f"/api/v1/posts/{post_id}/approve", headers=reviewer)
        assert approved.status_code == 200, approved.text

    matrix.wait_published(post_id, 1, 120)
    state = matrix.platforms.wechat.state(matrix.wechat_apps[account])
    (publication,) = state["publications"]
    (article,) = publication["articles"]
    assert article["title"] == body["title"] and article.get("thumb_media_id")
