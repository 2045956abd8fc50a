"""The HTTP servers' event loop accepts every connection waiting in the kernel's queue at once.

When a sale opens, buyers who were not connected all connect within the same second. libuv (uvloop) accepts
one connection per turn of the loop, and a turn of a busy ``boxoffice run`` takes tens of milliseconds: the
last of 64 new buyers waited seconds before its first request was even read. Counted in turns of the loop,
not in time, so that a slow machine cannot fail it.
"""

from __future__ import annotations

import asyncio
import socket
import time

from starlette.applications import Starlette

from boxoffice import cli
from boxoffice.platform.settings import Settings

WAITING = 40


def _turns_until_accepted(loop: asyncio.AbstractEventLoop) -> tuple[int, int]:
    """(connections accepted, the turn of the loop that accepted the last) for WAITING connections that are
    already in the listening socket's queue, with every turn of the loop kept busy for 2 ms."""
    accepted: list[int] = []
    turns = 0

    class Counted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(turns)

    server = loop.run_until_complete(loop.create_server(Counted, "127.0.0.1", 0, backlog=128))
    port = server.sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(WAITING)]  # the kernel accepts them

    def busy_turn() -> None:
        nonlocal turns
        turns += 1
        time.sleep(0.002)  # the requests of the buyers already connected
        if turns < 200 and len(accepted) < WAITING:
            loop.call_soon(busy_turn)  # runs once in the next turn
        else:
            loop.stop()

    try:
        loop.call_soon(busy_turn)
        loop.run_forever()
    finally:
        for client in clients:
            client.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
    return len(accepted), max(accepted, default=0)


def test_the_servers_event_loop_accepts_a_burst_of_new_connections_in_one_turn() -> None:
    config = cli.server_config(Starlette(), Settings(), port=0)
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        accepted, last_turn = _turns_until_accepted(loop)
    finally:
        loop.close()
    assert accepted == WAITING
    assert last_turn <= 3, f"the last of {WAITING} waiting connections was accepted in turn {last_turn}"


def test_uvloop_is_still_a_setting() -> None:
    assert Settings().event_loop == "asyncio"
    assert cli.server_config(Starlette(), Settings(event_loop="uvloop"), port=0).loop == "uvloop"


def test_connections_to_a_reuse_port_socket_send_small_writes_at_once() -> None:
    """``serve --reuse-port`` (``run --api-processes N`` and every service of ``--processes``) listens on a
    socket it makes itself. Its connections must have TCP_NODELAY, as asyncio gives every TCP connection it
    recognises: without it, an answer's second write waited for the client's delayed ACK (about 40 ms per
    request on a keep-alive connection)."""
    listener = cli.reuse_port_socket("127.0.0.1", 0)
    options: list[int] = []

    async def main() -> None:
        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            options.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            while not options:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert options and options[0] != 0
