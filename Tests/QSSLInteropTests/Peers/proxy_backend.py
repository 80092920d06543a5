"""A plaintext backend behind `qssl serve --backend` for the proxy tests (ProxyTests.swift).

    python proxy_backend.py [--host 127.0.0.1] [--port N | --unix PATH] [--expect-proxy none|v1|v2]
                            [--record FILE] [--delay-read SECONDS] [--http]

Prints `listening PORT` (or `listening unix:PATH`) once it accepts connections.

Each connection:
  1. with --expect-proxy v1|v2, first reads and parses the PROXY protocol header (its own parser,
     independent of Q-SSL's); a malformed or missing header is recorded ("proxy_error") and the
     connection is closed;
  2. with --delay-read, does not read anything more for that many seconds (a slow backend, so that
     the proxy must hold back the client);
  3. echoes what it receives; when it reads EOF (the proxy shut the write side after the client's
     close_notify) it writes `EOF-SEEN\\n` and then closes, so the client can see that the
     half-close reached the backend and that the backend could still answer.
     With --http instead: reads one HTTP/1.x request (headers and a Content-Length body), answers
     `200` with an HTML page that contains the request (an HTTP echo), and closes.
  4. with --record FILE, appends one JSON line describing the connection: the PROXY header
     (addresses, ports, every TLV decoded), bytes received, eof_seen.
"""
import argparse
import asyncio
import html
import ipaddress
import json
import os
import socket
import struct
import sys
import time

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_V1 = 107  # the longest v1 line, CRLF included (the PROXY protocol spec, 2.1)

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_NETNS = 0x30
PP2_TYPE_QSSL = 0xE0  # Q-SSL: format, group code point, flags, group name


class ProxyHeaderError(Exception):
    pass


def parse_tlvs(data):
    """A list of (type, value) from a TLV block; raises on a truncated TLV."""
    out = []
    i = 0
    while i < len(data):
        if len(data) - i < 3:
            raise ProxyHeaderError("truncated TLV header at offset %d" % i)
        t = data[i]
        n = struct.unpack("!H", data[i + 1:i + 3])[0]
        if len(data) - i - 3 < n:
            raise ProxyHeaderError("TLV 0x%02x claims %d bytes, %d left" % (t, n, len(data) - i - 3))
        out.append((t, data[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def text(value):
    return value.decode("utf-8", errors="replace")


def decode_tlvs(data, record):
    """Decodes every TLV into `record` (known ones by name, all of them raw under "tlvs")."""
    raw = []
    for t, value in parse_tlvs(data):
        raw.append({"type": t, "hex": value.hex()})
        if t == PP2_TYPE_ALPN:
            record["alpn"] = text(value)
        elif t == PP2_TYPE_AUTHORITY:
            record["authority"] = text(value)
        elif t == PP2_TYPE_UNIQUE_ID:
            record["unique_id"] = value.hex()
        elif t == PP2_TYPE_NETNS:
            record["netns"] = text(value)
        elif t == PP2_TYPE_SSL:
            if len(value) < 5:
                raise ProxyHeaderError("PP2_TYPE_SSL shorter than 5 bytes")
            ssl = {
                "client": value[0],
                "client_ssl": bool(value[0] & 0x01),
                "client_cert_conn": bool(value[0] & 0x02),
                "client_cert_sess": bool(value[0] & 0x04),
                "verify": struct.unpack("!I", value[1:5])[0],
            }
            for st, sv in parse_tlvs(value[5:]):
                name = {
                    PP2_SUBTYPE_SSL_VERSION: "version",
                    PP2_SUBTYPE_SSL_CN: "cn",
                    PP2_SUBTYPE_SSL_CIPHER: "cipher",
                    PP2_SUBTYPE_SSL_SIG_ALG: "sig_alg",
                    PP2_SUBTYPE_SSL_KEY_ALG: "key_alg",
                }.get(st)
                if name is None:
                    ssl.setdefault("unknown", []).append({"type": st, "hex": sv.hex()})
                else:
                    ssl[name] = text(sv)
            record["ssl"] = ssl
        elif t == PP2_TYPE_QSSL:
            # uint8 format (1), uint16 group, uint8 flags (bit0 post-quantum, bit1 resumed),
            # uint8 N, N bytes of the group's IANA name
            if len(value) < 5:
                raise ProxyHeaderError("Q-SSL TLV shorter than 5 bytes")
            fmt, group, flags, n = struct.unpack("!BHBB", value[:5])
            if len(value) != 5 + n:
                raise ProxyHeaderError("Q-SSL TLV: name length %d but %d bytes follow" % (n, len(value) - 5))
            record["qssl"] = {
                "format": fmt,
                "group_code": group,
                "flags": flags,
                "post_quantum": bool(flags & 0x01),
                "resumed": bool(flags & 0x02),
                "group": text(value[5:5 + n]),
            }
    record["tlvs"] = raw


async def read_v2(reader, record):
    head = await reader.readexactly(16)
    if head[:12] != V2_SIGNATURE:
        raise ProxyHeaderError("no PROXY v2 signature: %r" % head[:12])
    ver_cmd, fam, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError("PROXY v2 version %d" % (ver_cmd >> 4))
    cmd = ver_cmd & 0x0F
    if cmd not in (0, 1):
        raise ProxyHeaderError("PROXY v2 command %d" % cmd)
    body = await reader.readexactly(length)
    record["proxy"] = "v2"
    record["command"] = "PROXY" if cmd == 1 else "LOCAL"
    family, transport = fam >> 4, fam & 0x0F
    record["family"] = {0: "UNSPEC", 1: "INET", 2: "INET6", 3: "UNIX"}.get(family, str(family))
    record["transport"] = {0: "UNSPEC", 1: "STREAM", 2: "DGRAM"}.get(transport, str(transport))
    if family == 1:
        need = 12
        if len(body) < need:
            raise ProxyHeaderError("PROXY v2 INET body too short")
        record["source"] = str(ipaddress.IPv4Address(body[0:4]))
        record["destination"] = str(ipaddress.IPv4Address(body[4:8]))
        record["source_port"], record["destination_port"] = struct.unpack("!HH", body[8:12])
    elif family == 2:
        need = 36
        if len(body) < need:
            raise ProxyHeaderError("PROXY v2 INET6 body too short")
        record["source"] = str(ipaddress.IPv6Address(body[0:16]))
        record["destination"] = str(ipaddress.IPv6Address(body[16:32]))
        record["source_port"], record["destination_port"] = struct.unpack("!HH", body[32:36])
    elif family == 3:
        need = 216
        if len(body) < need:
            raise ProxyHeaderError("PROXY v2 UNIX body too short")
        record["source"] = text(body[0:108].split(b"\x00", 1)[0])
        record["destination"] = text(body[108:216].split(b"\x00", 1)[0])
    elif family == 0:
        need = 0
    else:
        raise ProxyHeaderError("PROXY v2 address family %d" % family)
    decode_tlvs(body[need:], record)


async def read_v1(reader, record):
    line = b""
    while not line.endswith(b"\r\n"):
        byte = await reader.readexactly(1)
        line += byte
        if len(line) > MAX_V1:
            raise ProxyHeaderError("PROXY v1 line longer than %d bytes" % MAX_V1)
    parts = line[:-2].decode("ascii", errors="strict").split(" ")
    if parts[0] != "PROXY":
        raise ProxyHeaderError("not a PROXY v1 line: %r" % line)
    record["proxy"] = "v1"
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        record["family"] = "UNKNOWN"
        return
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("malformed PROXY v1 line: %r" % line)
    record["family"] = parts[1]
    record["source"] = str(ipaddress.ip_address(parts[2]))
    record["destination"] = str(ipaddress.ip_address(parts[3]))
    record["source_port"], record["destination_port"] = int(parts[4]), int(parts[5])


async def read_http_request(reader):
    """One HTTP/1.x request: headers and a Content-Length body, as bytes."""
    data = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in data.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        data += await reader.readexactly(length)
    return data


class Backend:
    def __init__(self, args):
        self.args = args
        self.count = 0

    def record(self, entry):
        if not self.args.record:
            return
        with open(self.args.record, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    async def handle(self, reader, writer):
        self.count += 1
        started = time.monotonic()
        entry = {"connection": self.count, "bytes_received": 0, "bytes_sent": 0, "eof_seen": False}
        peer = writer.get_extra_info("peername")
        if isinstance(peer, tuple):
            entry["peer"] = "%s:%d" % (peer[0], peer[1])
        try:
            try:
                if self.args.expect_proxy == "v2":
                    await read_v2(reader, entry)
                elif self.args.expect_proxy == "v1":
                    await read_v1(reader, entry)
            except (ProxyHeaderError, asyncio.IncompleteReadError, UnicodeDecodeError, ValueError) as e:
                entry["proxy_error"] = "%s: %s" % (type(e).__name__, e)
                return
            if self.args.delay_read:
                await asyncio.sleep(self.args.delay_read)
            if self.args.http:
                try:
                    request = await read_http_request(reader)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                    entry["http_error"] = "%s: %s" % (type(e).__name__, e)
                    return
                entry["bytes_received"] = len(request)
                entry["request"] = request.decode("utf-8", errors="replace")
                body = ("<!DOCTYPE html><html><head><title>qssl-proxy-backend</title></head><body>"
                        "<h1 id=\"marker\">qssl-proxy-backend</h1><pre id=\"request\">%s</pre></body></html>"
                        % html.escape(entry["request"])).encode()
                head = ("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n" % len(body)).encode()
                writer.write(head + body)
                entry["bytes_sent"] = len(head) + len(body)
                await writer.drain()
                return
            while True:
                data = await reader.read(65536)
                if not data:
                    entry["eof_seen"] = True
                    writer.write(b"EOF-SEEN\n")
                    entry["bytes_sent"] += 9
                    await writer.drain()
                    break
                entry["bytes_received"] += len(data)
                writer.write(data)
                entry["bytes_sent"] += len(data)
                await writer.drain()
        except (ConnectionError, OSError) as e:
            entry["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self.record(entry)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--unix")
    parser.add_argument("--expect-proxy", choices=["none", "v1", "v2"], default="none")
    parser.add_argument("--record")
    parser.add_argument("--delay-read", type=float, default=0)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    backend = Backend(args)
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = await asyncio.start_unix_server(backend.handle, path=args.unix)
        print("listening unix:%s" % args.unix, flush=True)
    else:
        server = await asyncio.start_server(backend.handle, host=args.host, port=args.port,
                                            family=socket.AF_INET6 if ":" in args.host else socket.AF_INET,
                                            reuse_address=True)
        print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
