# asyncio streams over our socket (select.poll through the stream ioctl); argv: [script, peer_ip, port].
import sys
import asyncio

peer, port = sys.argv[1], int(sys.argv[2])


async def main():
    reader, writer = await asyncio.open_connection(peer, port)
    writer.write(b"async hello\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line == b"async hello\n", line
    writer.close()
    await writer.wait_closed()
    print("asyncio_client ok")


asyncio.run(main())
