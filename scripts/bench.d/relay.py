#!/usr/bin/env python3
"""A TCP relay that adds a fixed delay each way, as a box far away would: what the status
--all bench puts in front of each "box", so that it measures waiting on the network and not
this machine's cores.

  relay.py DELAY_MS TARGET_PORT [COUNT]

Listens on COUNT (default 1) free ports of 127.0.0.1, each relaying to 127.0.0.1:TARGET_PORT,
prints those ports on one line once they listen, and runs until killed. Bytes keep their
order and arrive DELAY_MS after they were read; the rate is not limited.
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def main():
    delay = float(sys.argv[1]) / 1000
    target = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1

    async def handle(client_reader, client_writer):
        try:
            box_reader, box_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, box_writer, delay), pipe(box_reader, client_writer, delay)
        )
        for w in (box_writer, client_writer):
            w.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(count)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
