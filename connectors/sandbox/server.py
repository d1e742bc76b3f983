"""Run an ASGI app (a sandbox, or the hub) on a loopback port in a background thread.

Used by tests, benchmarks and ``govhub sandbox``/``govhub demo``: connectors are always exercised
over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    base_url: str
    server: uvicorn.Server = field(repr=False)
    thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 15.0
) -> RunningServer:
    """Start ``app`` with uvicorn in a daemon thread and wait until it accepts connections."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{port} did not start within {timeout}s")
        time.sleep(0.01)
    return RunningServer(base_url=f"http://{host}:{port}", server=server, thread=thread)
