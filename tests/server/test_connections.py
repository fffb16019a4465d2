"""The sockets `lmql_nb serve` accepts connections on."""

from __future__ import annotations

import asyncio
import socket

from lmql_nb.server.run import bind


def test_each_connection_sends_without_waiting_for_acks():
    # uvicorn writes a response as headers, then body; with Nagle's algorithm on, the body
    # waited for the client's delayed ACK (~40 ms per request on 127.0.0.1). asyncio turns
    # it off on the connections of a socket made for TCP, as uvicorn's server gets ours.
    async def main() -> int:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = bind("127.0.0.1", 0)
        sock.listen(1)
        server = await asyncio.start_server(connected, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(accepted, timeout=10)
            finally:
                writer.close()

    assert asyncio.run(main()) != 0
