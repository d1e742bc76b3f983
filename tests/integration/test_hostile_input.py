"""Hostile input (issue 14): image bombs, huge numbers, NUL bytes, the documented 422, headers."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from hub.config import get_settings
from hub.web.app import create_app
from tests.images import png_declaring, tiny_gif_declaring
from tests.integration.test_editor_pages import login

pytestmark = pytest.mark.integration

TOO_BIG = 2**63  # one more than SQLite (and a BIGINT) holds
INT4_PLUS_ONE = 2**31  # one more than an INTEGER column (every id) holds on PostgreSQL


def upload(
    client: TestClient, headers: dict[str, str], data: bytes, name: str = "x.png"
) -> httpx.Response:
    return client.post("/api/v1/media", files={"file": (name, data, "image/png")}, headers=headers)


def test_image_bombs_are_refused_in_words_not_with_a_500(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    bomb = png_declaring(20000, 20000)
    assert len(bomb) < 100_000  # the reported 48 KB file
    for data in (bomb, tiny_gif_declaring(65535, 65535)):
        sent = upload(client, auth["kaili-editor"], data)
        assert sent.status_code == 422, sent.text
        assert "像素" in sent.json()["detail"]


def test_a_large_but_pillow_tolerated_image_is_refused_over_the_pixel_limit(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    sent = upload(client, auth["kaili-editor"], png_declaring(13370, 13370))
    assert sent.status_code == 422, sent.text
    assert "13370×13370" in sent.json()["detail"] and "40 百万像素" in sent.json()["detail"]


def test_every_frame_counts_against_the_limit_set_by_the_operator(
    client: TestClient, auth: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_MEDIA_MAX_PIXELS", "25000")
    get_settings.cache_clear()
    frames = [Image.new("RGB", (100, 100), (i * 80, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    with TestClient(create_app()) as limited:
        three = upload(limited, auth["kaili-editor"], buffer.getvalue(), "a.gif")
        assert three.status_code == 422, three.text  # 3 x 10,000 > 25,000
        one = io.BytesIO()
        frames[0].save(one, "GIF")
        assert upload(limited, auth["kaili-editor"], one.getvalue(), "b.gif").status_code == 201


def test_a_truncated_image_is_refused_at_upload(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((300, 300), 64).convert("RGB").save(buffer, "PNG")
    sent = upload(client, auth["kaili-editor"], buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert sent.status_code == 422, sent.text
    assert "不完整" in sent.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/accounts/{TOO_BIG}",
        f"/api/v1/posts/{TOO_BIG}",
        f"/api/v1/live-sessions/{TOO_BIG}/entries",
        f"/api/v1/cases/{TOO_BIG}",
        f"/api/v1/audits/compare?from={TOO_BIG}&to=1",
        f"/api/v1/audit-log?offset={TOO_BIG}",
        f"/api/v1/posts?offset={TOO_BIG}",
        f"/posts/{TOO_BIG}/edit",
        f"/api/v1/accounts/{INT4_PLUS_ONE}",
        f"/api/v1/live-sessions/{INT4_PLUS_ONE}/entries?after={INT4_PLUS_ONE}",
        f"/api/v1/posts?offset={INT4_PLUS_ONE}",
    ],
)
def test_numbers_beyond_a_bigint_are_a_422_not_a_500(
    client: TestClient, auth: dict[str, dict[str, str]], path: str
) -> None:
    answer = client.get(path, headers=auth["admin"], follow_redirects=False)
    assert answer.status_code == 422, answer.text
    assert "detail" in answer.json() and answer.json()["errors"]


def test_a_too_large_id_in_a_body_is_a_422(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    answer = client.post(
        "/api/v1/posts",
        json={"title": "t", "body": "b", "target_account_ids": [TOO_BIG]},
        headers=auth["kaili-editor"],
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].startswith("target_account_ids")


def test_a_nul_byte_in_the_hall_search_is_refused_and_the_search_still_works(
    client: TestClient,
) -> None:
    refused = client.get("/hall?q=x%00y")
    assert refused.status_code == 422
    assert "NUL" in refused.json()["detail"]
    assert client.get("/hall?q=%22%22%22abc%20OR%20*").status_code == 200


def test_a_nul_byte_in_a_json_body_is_refused(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    answer = client.post(
        "/api/v1/posts",
        content=b'{"title": "a\\u0000b", "body": "b"}',
        headers={**auth["kaili-editor"], "content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert "NUL" in answer.json()["detail"]


def test_the_openapi_document_describes_the_422_the_api_sends(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    document = client.get("/openapi.json").json()
    schema = document["components"]["schemas"]["HTTPValidationError"]
    assert schema["properties"]["detail"] == {"type": "string", "title": "Detail"}
    assert "errors" in schema["properties"]
    operation = document["paths"]["/api/v1/posts/{post_id}"]["get"]
    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    answer = client.get("/api/v1/posts/abc", headers=auth["admin"]).json()
    assert isinstance(answer["detail"], str)
    assert set(answer["errors"][0]) == {"field", "message"}


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/login", "/hall", "/compose", "/clocks"])
def test_pages_carry_the_security_headers(client: TestClient, path: str) -> None:
    login(client, "kaili-editor")
    page = client.get(path)
    assert page.status_code == 200, page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in page.headers["permissions-policy"]
    assert "strict-transport-security" not in page.headers  # the test hub is on http
    for attributes in re.findall(r"<script\b([^>]*)>", page.text):
        assert "src=" in attributes or "application/" in attributes, attributes
    assert " style=" not in page.text


def test_hsts_when_the_public_url_is_https(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_PUBLIC_BASE_URL", "https://hall.test")
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="https://hall.test") as secure:
        assert "max-age=" in secure.get("/login").headers["strict-transport-security"]


def test_a_cookie_write_from_another_origin_is_refused(client: TestClient) -> None:
    csrf = login(client, "kaili-editor")
    body = {"title": "来源检查", "body": "正文"}
    headers = {"x-csrf-token": csrf}
    evil = client.post(
        "/api/v1/posts", json=body, headers={**headers, "origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert "来源" in evil.json()["detail"]
    ours = client.post(
        "/api/v1/posts", json=body, headers={**headers, "origin": "http://hall.test"}
    )
    assert ours.status_code == 201, ours.text
    same_host = client.post(
        "/api/v1/posts", json=body, headers={**headers, "origin": "http://testserver"}
    )
    assert same_host.status_code == 201, same_host.text
    no_origin = client.post("/api/v1/posts", json=body, headers=headers)
    assert no_origin.status_code == 201, no_origin.text


def test_like_wildcards_in_a_search_are_plain_characters(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    everything = client.get("/api/v1/orgs?q=%25", headers=auth["admin"])  # q = "%"
    assert everything.status_code == 200 and everything.json() == []
    kaili = client.get("/api/v1/orgs?q=凯里", headers=auth["admin"]).json()
    assert [org["code"] for org in kaili] == ["522601"]
