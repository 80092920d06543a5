"""OpenSSL 4.0 (PyPI's cryptography, through pyOpenSSL) as a TLS client for the proxy tests.

    python tls_client.py HOST:PORT [--sni NAME] [--groups G1:G2] [--ca CA.pem] [--cert C --key K]
                         [--send TEXT] [--chunks N --chunk-size BYTES] [--half-close]
                         [--wait-close SECONDS] [--prefix-hex HEX] [--tls-version 1.2|1.3] [--timeout S]
                         [--flood SECONDS]

1. connects (writing the bytes of --prefix-hex first, e.g. a PROXY header, before the TLS
   handshake) and completes the handshake (verifying the server against --ca when given);
2. sends --send and reads until its echo has arrived; then --chunks times sends --chunk-size
   bytes of a pattern and reads until their echo arrived;
3. then either
   --half-close: sends close_notify (conn.shutdown()) and shuts the socket's write side
     (SHUT_WR), then reads everything the server still sends until close_notify or EOF;
   --wait-close S: sends nothing more and reads until the server closes (or S seconds), to
     observe a server-side close (idle timeout, drain) and when it came;
   --flood S: writes 16 KiB records without ever reading, until a write blocks for a second or S
     seconds passed, and reports how many bytes it wrote ("flood_bytes", "flood_blocked");
   otherwise: sends close_notify and closes.
Prints one JSON object: ok, version, cipher, group, peer_subject (the leaf's CN), received (the
text after the echoes, e.g. "EOF-SEEN\\n"; with --no-echo-wait everything), echo_ok,
close_notify_received, end ("close_notify", "eof", "timeout", "error: ..."), seconds_to_close.
"""
import argparse
import json
import select
import signal
import socket
import struct
import sys
import time

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib


def out(obj):
    print(json.dumps(obj), flush=True)


def group_name(conn):
    try:
        name = _lib.SSL_get0_group_name(conn._ssl)
        return _ffi.string(name).decode() if name != _ffi.NULL else None
    except AttributeError:
        return None


def leaf_subject(conn):
    from cryptography.x509.oid import NameOID
    cert = conn.get_peer_certificate(as_cryptography=True)
    if cert is None:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else cert.subject.rfc4514_string()


def pattern(n, seed):
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


class Reader:
    """Reads through pyOpenSSL with a deadline; remembers how the stream ended."""

    def __init__(self, conn, sock):
        self.conn = conn
        self.sock = sock
        self.buffer = b""
        self.end = None  # "close_notify", "eof", "timeout", "error: ..."

    def read_some(self, deadline):
        if self.end is not None:
            return False
        while True:
            if self.conn.pending() == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.end = "timeout"
                    return False
                readable, _, _ = select.select([self.sock], [], [], left)
                if not readable:
                    self.end = "timeout"
                    return False
            try:
                data = self.conn.recv(65536)
            except SSL.WantReadError:
                continue
            except SSL.ZeroReturnError:
                self.end = "close_notify"
                return False
            except SSL.SysCallError as e:
                # (-1, 'Unexpected EOF') is a TCP FIN without close_notify
                self.end = "eof" if e.args and e.args[0] == -1 else "error: %s" % (e,)
                return False
            except SSL.Error as e:
                self.end = "error: %s" % (e,)
                return False
            if not data:
                self.end = "eof"
                return False
            self.buffer += data
            return True

    def read_exactly(self, n, deadline):
        while len(self.buffer) < n:
            if not self.read_some(deadline):
                break
        got, self.buffer = self.buffer[:n], self.buffer[n:]
        return got

    def read_to_end(self, deadline):
        while self.read_some(deadline):
            pass
        got, self.buffer = self.buffer, b""
        return got


def main():
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("--sni", default="localhost")
    p.add_argument("--groups")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--send", default="hello from OpenSSL 4")
    p.add_argument("--chunks", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=16384)
    p.add_argument("--half-close", action="store_true")
    p.add_argument("--wait-close", type=float)
    p.add_argument("--prefix-hex", default="")
    p.add_argument("--tls-version", choices=["1.2", "1.3"])
    p.add_argument("--flood", type=float, help="write without reading for up to SECONDS (back-pressure)")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()

    # A hard bound on the whole run, whatever blocks.
    signal.signal(signal.SIGALRM, lambda *_: (out({"ok": False, "error": "hard timeout"}), sys.exit(3)))
    signal.alarm(int(args.timeout) + 5)

    host, _, port = args.address.rpartition(":")
    host = host.strip("[]")
    ctx = SSL.Context(SSL.TLS_METHOD)
    if args.tls_version == "1.3":
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    elif args.tls_version == "1.2":
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    if args.groups and _lib.SSL_CTX_set1_curves_list(ctx._context, args.groups.encode()) != 1:
        out({"ok": False, "error": "OpenSSL refused groups " + args.groups})
        return 2
    if args.ca:
        ctx.load_verify_locations(args.ca)
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: a[-1])
    if args.cert:
        ctx.use_certificate_chain_file(args.cert)
        ctx.use_privatekey_file(args.key)

    result = {"ok": False, "openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()}
    started = time.monotonic()
    deadline = started + args.timeout
    try:
        sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    except OSError as e:
        result["error"] = "connect: %s" % (e,)
        result["stage"] = "connect"
        result["seconds"] = round(time.monotonic() - started, 3)
        out(result)
        return 1
    # pyOpenSSL wants a blocking socket; the reads below wait with select and a deadline, and
    # SO_SNDTIMEO/SO_RCVTIMEO bound the handshake and the writes.
    sock.settimeout(None)
    tv = struct.pack("ll", int(args.timeout), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    if args.prefix_hex:
        sock.sendall(bytes.fromhex(args.prefix_hex))
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(args.sni.encode())
    conn.set_connect_state()
    try:
        conn.do_handshake()
    except (SSL.Error, OSError) as e:
        result["error"] = "handshake: %s" % (e,)
        result["stage"] = "handshake"
        result["seconds"] = round(time.monotonic() - started, 3)
        out(result)
        return 1
    result.update({
        "version": conn.get_protocol_version_name(),
        "cipher": conn.get_cipher_name(),
        "group": group_name(conn),
        "peer_subject": leaf_subject(conn),
        "handshake_seconds": round(time.monotonic() - started, 3),
    })
    reader = Reader(conn, sock)
    echo_ok = True
    try:
        if args.send:
            message = args.send.encode()
            conn.sendall(message)
            got = reader.read_exactly(len(message), deadline)
            result["echo"] = got.decode(errors="replace")
            echo_ok = echo_ok and got == message
        for i in range(args.chunks):
            chunk = pattern(args.chunk_size, i)
            conn.sendall(chunk)
            got = reader.read_exactly(len(chunk), deadline)
            if got != chunk:
                echo_ok = False
                result["chunk_failed"] = {"index": i, "received": len(got)}
                break
        result["echo_ok"] = echo_ok
        if args.flood:
            # Writes 16 KiB records and never reads, until a write has been blocked for a second
            # (the other side stopped taking data) or --flood seconds passed.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 0))
            block = pattern(16384, 7)
            written = 0
            flood_end = time.monotonic() + args.flood
            blocked = False
            while time.monotonic() < flood_end:
                try:
                    written += conn.send(block)
                except (SSL.WantWriteError, SSL.WantReadError):
                    blocked = True
                    break
                except SSL.SysCallError as e:
                    if e.args and e.args[0] in (11, 110):  # EAGAIN / ETIMEDOUT: the send timeout
                        blocked = True
                        break
                    raise
            result["flood_bytes"] = written
            result["flood_blocked"] = blocked
            result["ok"] = True
            out(result)
            sock.close()
            return 0
        if args.half_close:
            conn.shutdown()  # close_notify
            result["close_notify_sent"] = True
            sock.shutdown(socket.SHUT_WR)
            rest = reader.read_to_end(deadline)
        elif args.wait_close is not None:
            waited = time.monotonic()
            rest = reader.read_to_end(min(deadline, waited + args.wait_close))
            result["seconds_to_close"] = round(time.monotonic() - waited, 3)
        else:
            rest = reader.buffer
            try:
                conn.shutdown()
            except SSL.Error:
                pass
        result["received"] = rest.decode(errors="replace")
        result["end"] = reader.end
        result["close_notify_received"] = reader.end == "close_notify"
        result["ok"] = echo_ok
    except (SSL.Error, OSError) as e:
        result["error"] = "after handshake: %s" % (e,)
        result["end"] = reader.end
    sock.close()
    out(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
