"""A stopping server ends every live stream: the broadcaster closes its readers once the server
says it is draining, and closes at once any reader that subscribes after that."""

from __future__ import annotations

import asyncio

from hub.live.broadcast import CLOSE, Broadcaster


def test_readers_are_closed_when_the_server_starts_to_stop() -> None:
    stopping = False

    async def scenario() -> None:
        nonlocal stopping
        broadcaster = Broadcaster(
            redis_url=None,
            load_events=lambda _session, _after, _upto: [],
            load_last_id=lambda _session: 0,
            draining=lambda: stopping,
        )
        readers = [await broadcaster.subscribe(1), await broadcaster.subscribe(2, console=True)]
        await asyncio.sleep(0.5)
        assert all(not reader.queue.frames for reader in readers)  # open while serving
        stopping = True
        for reader in readers:
            assert await asyncio.wait_for(reader.queue.take(), 2) == [CLOSE]
        late = await broadcaster.subscribe(1)  # a request that came in during the shutdown
        assert await asyncio.wait_for(late.queue.take(), 1) == [CLOSE]
        await broadcaster.stop()

    asyncio.run(scenario())
