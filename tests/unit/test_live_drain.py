"""A stopping server ends every live stream: the broadcaster closes its readers once the server
says it is draining, and closes at once any reader that subscribes after that."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from hub.live.broadcast import CLOSE, Broadcaster


def test_readers_are_closed_when_the_server_starts_to_stop() -> None:
    stopping = False
    asked = 0

    def draining() -> bool:
        nonlocal asked
        asked += 1
        return stopping

    async def scenario() -> None:
        nonlocal stopping
        broadcaster = Broadcaster(
            redis_url=None,
            load_events=lambda _session, _after, _upto: [],
            load_last_id=lambda _session: 0,
            draining=draining,
        )
        readers = [await broadcaster.subscribe(1), await broadcaster.subscribe(2, console=True)]
        seen = asked
        while asked < seen + 2:  # the broadcaster looked twice while serving ...
            await asyncio.sleep(0.05)
        assert all(not reader.queue.frames for reader in readers)  # ... and left them open
        stopping = True
        for reader in readers:
            assert await asyncio.wait_for(reader.queue.take(), 2) == [CLOSE]
        late = await broadcaster.subscribe(1)  # a request that came in during the shutdown
        assert await asyncio.wait_for(late.queue.take(), 1) == [CLOSE]
        await broadcaster.stop()

    # on a thread of its own: in the whole suite Playwright keeps a loop on the main thread
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result(timeout=30)
