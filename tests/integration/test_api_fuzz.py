"""Every operation of the OpenAPI document, fuzzed in-process (schemathesis over ASGI).

As an admin and as a county editor: no 5xx for any input, valid or not, and every response the
document describes matches its schema (the 422 included). Fixed seed (``derandomize``) and a
bounded number of examples per operation: GOVHUB_FUZZ_EXAMPLES (default 6; raise it locally
to dig deeper).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hub.config import get_settings
from hub.web.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EXAMPLES = int(os.environ.get("GOVHUB_FUZZ_EXAMPLES", "6"))
STREAMS = ("/events",)  # server-sent events never end: not something to fuzz with a client


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """The first failure for ``operation`` (None when every example passed)."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if failures:
            return
        response = case.call(headers=dict(headers))
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except Exception as exc:
            failures.append(
                f"{operation.method.upper()} {operation.path} ({mode.value}) -> "
                f"{response.status_code}: {str(exc)[:600]}"
            )

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    return failures[0] if failures else None


@pytest.mark.parametrize("user", ["admin", "kaili-editor"])
def test_no_input_makes_a_server_error_and_every_answer_matches_the_document(
    guizhou: dict[str, str],
    auth: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    user: str,
) -> None:
    # No network: registered URLs are not resolved, platform APIs answer "connection refused".
    monkeypatch.setenv("GOVHUB_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", "http://127.0.0.1:9")
    get_settings.cache_clear()
    from hub.system import record_heartbeat

    for process in ("worker", "beat"):  # a running deployment: /readyz answers 200, not 503
        record_heartbeat(process)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith(STREAMS):
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz(operation, mode, auth[user])
            if failure:
                failures.append(failure)
    assert operations > 60
    assert not failures, "\n\n".join(failures)
