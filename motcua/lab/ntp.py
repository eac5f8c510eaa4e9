"""The lab's NTP servers: the city's ntp01/ntp02 addresses, answering with this machine's clock.

The lab's counter PCs run chrony against the registry's NTP servers
(127.79.0.11 and .12 in the lab). This answers their NTP client requests
(RFC 5905 server mode, stratum 2) with this machine's own clock, so chrony
on every lab counter synchronises as it would in production - without any lab
host ever being allowed to set this machine's clock.

    python -m motcua.lab.ntp --address 127.79.0.11 --address 127.79.0.12
"""

from __future__ import annotations

import argparse
import selectors
import socket
import struct
import time

NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01
PACKET = struct.Struct("!BBbbII4sQQQQ")
STRATUM = 2
REFID = b"LAB\x00"


def ntp_time(now: float) -> int:
    seconds = int(now) + NTP_EPOCH_OFFSET
    fraction = int((now % 1) * (1 << 32))
    return (seconds << 32) | fraction


def answer(request: bytes, received: float) -> bytes | None:
    """The server-mode reply to one client request, or None for anything else."""
    if len(request) < PACKET.size:
        return None
    fields = PACKET.unpack_from(request)
    version, mode = (fields[0] >> 3) & 0x7, fields[0] & 0x7
    if mode != 3 or version not in (3, 4):  # client requests only
        return None
    origin = fields[10]  # the client's transmit timestamp
    reference = ntp_time(received - 16)
    return PACKET.pack(
        (0 << 6) | (version << 3) | 4,  # no leap warning, the client's version, server mode
        STRATUM,
        6,  # poll 64 s
        -20,  # precision ~1 µs
        0,  # root delay
        0x00000100,  # root dispersion ~4 ms
        REFID,
        reference,
        origin,
        ntp_time(received),
        ntp_time(time.time()),
    )


def serve(addresses: list[str], port: int = 123) -> None:
    selector = selectors.DefaultSelector()
    for address in addresses:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            try:
                request, peer = sock.recvfrom(512)  # type: ignore[union-attr]
            except OSError:
                continue
            reply = answer(request, time.time())
            if reply is not None:
                sock.sendto(reply, peer)  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", required=True, help="a loopback address to answer on")
    parser.add_argument("--port", type=int, default=123)
    args = parser.parse_args(argv)
    serve(args.address, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
