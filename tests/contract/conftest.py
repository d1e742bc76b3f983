"""The contract suite runs once per platform harness listed here.

Adding a platform = one ``harness_<platform>.py`` module (see ``harness.py``: ``PLATFORM``,
``CAPABILITIES``, ``ERROR_CASES``, ``start()``) and one line in ``HARNESS_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.contract.harness import Harness

HARNESS_MODULES = (
    "tests.contract.harness_weibo",
    "tests.contract.harness_hall",
    "tests.contract.harness_webhook",
    "tests.contract.harness_wechat",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "capability(name): run only against harnesses declaring this capability"
    )


def _modules() -> list[tuple[str, ModuleType]]:
    return [(name, importlib.import_module(name)) for name in HARNESS_MODULES]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness" not in metafunc.fixturenames:
        return
    modules = _modules()
    marker = metafunc.definition.get_closest_marker("capability")
    if marker is not None:
        modules = [(n, m) for n, m in modules if marker.args[0] in m.CAPABILITIES]
    if "capability" in metafunc.fixturenames:  # each capability a connector implements, only
        from connectors.base import CAPABILITIES
        from connectors.registry import connector_class

        cases = [
            (name, capability)
            for name, module in modules
            for capability, protocol in sorted(CAPABILITIES.items())
            if issubclass(connector_class(module.PLATFORM), protocol)
        ]
        ids = [f"{importlib.import_module(n).PLATFORM}-{c}" for n, c in cases]
        metafunc.parametrize(
            ("harness", "capability"), cases, indirect=["harness"], ids=ids, scope="session"
        )
    elif "error_case" in metafunc.fixturenames:
        pairs = [(name, case) for name, module in modules for case in module.ERROR_CASES]
        ids = [f"{importlib.import_module(n).PLATFORM}-{c.operation}-{c.name}" for n, c in pairs]
        metafunc.parametrize(
            ("harness", "error_case"), pairs, indirect=["harness"], ids=ids, scope="session"
        )
    else:
        metafunc.parametrize(
            "harness",
            [name for name, _ in modules],
            indirect=True,
            ids=[module.PLATFORM for _, module in modules],
            scope="session",
        )


@pytest.fixture(scope="session")
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A started harness (sandbox server on loopback + connector), shared by the session."""
    started: Harness = importlib.import_module(request.param).start()
    yield started
    started.stop()
