"""A TCP proxy that delays every byte and every end of stream by a fixed time in each direction: a slow link for
machines whose kernel has no `tc netem` (sch_netem). Standard library only.

    python3 bench/delay_proxy.py --listen 127.0.0.2 --target 127.0.0.1 --delay-ms 20 PORT [PORT...]

Listens on LISTEN:PORT for each PORT and forwards to TARGET:PORT. For FTP give the control port and every port of
the server's `passive_port` range: EPSV answers only a port, which the client then reaches on the proxy's address.
Order within a connection is kept; a client's FIN (or reset) reaches the server `delay` after the proxy saw it, as
its bytes do, so two connections that end together still end together, `delay` later.

bench/killed_uploads.py uses it to measure killed-client uploads over a 20 ms link.
"""

import argparse
import asyncio
import socket


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk (and the end) `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        try:
            while True:
                chunk = await reader.read(65536)
                queue.put_nowait((loop.time() + delay, chunk))
                if not chunk:
                    return
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + delay, None))

    async def write():
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                # A reset on one side: reset the other.
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.close()
                return
            if not chunk:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(chunk)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(read(), write())


async def serve(listen, target, port, delay):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target, port)
        except OSError:
            client_writer.close()
            return
        for w in (client_writer, server_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            pump(client_reader, server_writer, delay),
            pump(server_reader, client_writer, delay),
            return_exceptions=True,
        )
        for w in (client_writer, server_writer):
            w.close()

    return await asyncio.start_server(handle, listen, port)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.2")
    parser.add_argument("--target", default="127.0.0.1")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args()
    servers = [await serve(args.listen, args.target, p, args.delay_ms / 1000) for p in args.ports]
    print("READY", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
