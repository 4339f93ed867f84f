# asyncio streams as a client: non-blocking connect, drain, readline, and a read timeout
# (asyncio.wait_for) against the peer's echo server; argv: [script, peer_ip, port].
import sys
import asyncio

peer, port = sys.argv[1], int(sys.argv[2])


async def main():
    reader, writer = await asyncio.open_connection(peer, port)
    for i in range(3):
        writer.write("async {}\n".format(i).encode())
        await writer.drain()
        print("readline", await asyncio.wait_for(reader.readline(), 5))
    try:
        await asyncio.wait_for(reader.read(10), 0.2)
    except asyncio.TimeoutError:
        print("read timed out")
    writer.close()
    await writer.wait_closed()
    print("closed")


asyncio.run(main())
