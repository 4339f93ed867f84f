# asyncio stream echo server (asyncio.start_server) serving 3 peer clients at once;
# argv: [script, port, clients].
import sys
import asyncio

port, clients = int(sys.argv[1]), int(sys.argv[2])
served = []
done = asyncio.Event()


async def handle(reader, writer):
    line = await reader.readline()
    writer.write(b"echo " + line)
    await writer.drain()
    rest = await reader.read(100)
    served.append((line, rest))
    writer.close()
    await writer.wait_closed()
    if len(served) == clients:
        done.set()


async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", port)
    await asyncio.wait_for(done.wait(), 20)
    server.close()
    await server.wait_closed()
    for line, rest in sorted(served):
        print("served", line, rest)


asyncio.run(main())
