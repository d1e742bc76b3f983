from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.users.models import Role
from hub.web.app import create_app
from tests.factories import load_guizhou, make_user, token_for

USERS = {
    "admin": (Role.admin, "520000"),
    "supervisor": (Role.supervisor, "520000-bgt"),
    "prov-editor": (Role.editor, "520000-xwb"),
    "qdn-editor": (Role.editor, "522600"),
    "kaili-editor": (Role.editor, "522601"),
    "huangping-editor": (Role.editor, "522622"),
    "kaili-reviewer": (Role.reviewer, "522601"),
}


@pytest.fixture
def guizhou(hub_env: dict[str, str]) -> dict[str, str]:
    """The Guizhou matrix and one user per role."""
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    for username, (role, org) in USERS.items():
        make_user(url, username, role, org)
    return hub_env


@pytest.fixture
def client(guizhou: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(), client=("203.0.113.7", 50000)) as test_client:
        yield test_client


@pytest.fixture
def auth(client: TestClient, guizhou: dict[str, str]) -> dict[str, dict[str, str]]:
    url = guizhou["GOVHUB_DATABASE_URL"]
    return {username: token_for(username, url) for username in USERS}
