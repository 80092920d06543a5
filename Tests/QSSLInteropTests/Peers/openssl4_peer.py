"""OpenSSL 4.0 (bundled in PyPI's cryptography, driven through pyOpenSSL) as a TLS peer.

server: python openssl4_peer.py server PORT CERT KEY GROUPS     -> prints "ready", echoes one message
client: python openssl4_peer.py client PORT CA SERVERNAME GROUPS -> prints one JSON line
resume-server PORT CERT KEY GROUPS COUNT        -> prints "ready", serves COUNT connections one
    after the other from one context (OpenSSL's TLS 1.3 tickets), echoing one message on each
resume-client PORT CA SERVERNAME GROUPS COUNT   -> COUNT connections, each offering the session
    of the one before (Connection.set_session)
The resume roles print one JSON line at the end with one entry per connection under
"connections", each with "reused" (SSL_session_reused) and "group" (SSL_get0_group_name).
Every outcome is printed as one JSON line so the Swift tests can assert on it.
"""
import json
import socket
import sys

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib


def context(groups):
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    if _lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode()) != 1:
        raise SystemExit("OpenSSL refused groups " + groups)
    return ctx


def server_context(cert, key, groups):
    ctx = context(groups)
    ctx.use_certificate_chain_file(cert)
    ctx.use_privatekey_file(key)
    return ctx


def client_context(ca, groups):
    ctx = context(groups)
    ctx.load_verify_locations(ca)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1])
    return ctx


def listen(port, backlog):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(backlog)
    print("ready", flush=True)
    return listener


def describe(conn, **extra):
    out = {
        "ok": True,
        "version": conn.get_protocol_version_name(),
        "cipher": conn.get_cipher_name(),
        "openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode(),
    }
    out.update(extra)
    return out


def server(port, cert, key, groups):
    ctx = server_context(cert, key, groups)
    listener = listen(port, 1)
    listener.settimeout(30)
    sock, _ = listener.accept()
    sock.settimeout(None)  # pyOpenSSL needs blocking sockets; the tests bound the run time
    conn = SSL.Connection(ctx, sock)
    conn.set_accept_state()
    try:
        conn.do_handshake()
        data = conn.recv(65536)
        conn.sendall(data)
        print(json.dumps(describe(conn, received=data.decode(errors="replace"))), flush=True)
        conn.shutdown()
    except SSL.Error as e:
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
    sock.close()


def client(port, ca, server_name, groups):
    ctx = client_context(ca, groups)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(None)
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(server_name.encode())
    conn.set_connect_state()
    try:
        conn.do_handshake()
        conn.sendall(b"hello from OpenSSL 4")
        data = conn.recv(65536)
        print(json.dumps(describe(conn, received=data.decode(errors="replace"))), flush=True)
        conn.shutdown()
    except SSL.Error as e:
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
    sock.close()


def resumption(conn, **extra):
    name = _lib.SSL_get0_group_name(conn._ssl)
    return describe(conn, reused=bool(_lib.SSL_session_reused(conn._ssl)),
                    group=_ffi.string(name).decode() if name != _ffi.NULL else None, **extra)


def resume_server(port, cert, key, groups, count):
    ctx = server_context(cert, key, groups)
    listener = listen(port, 1)
    listener.settimeout(30)
    connections = []
    for _ in range(count):
        try:
            sock, _ = listener.accept()
        except OSError as e:
            connections.append({"ok": False, "error": repr(e)})
            break
        sock.settimeout(None)
        conn = SSL.Connection(ctx, sock)
        conn.set_accept_state()
        try:
            conn.do_handshake()  # OpenSSL sends its TLS 1.3 tickets before this returns
            data = conn.recv(65536)
            conn.sendall(data)
            connections.append(resumption(conn, received=data.decode(errors="replace")))
            conn.shutdown()
        except SSL.Error as e:
            connections.append({"ok": False, "error": str(e)})
        sock.close()
    print(json.dumps({"ok": len(connections) == count and all(c.get("ok") for c in connections),
                      "openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode(), "connections": connections}), flush=True)


def resume_client(port, ca, server_name, groups, count):
    ctx = client_context(ca, groups)
    session = None
    connections = []
    for i in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError as e:
            connections.append({"ok": False, "error": repr(e)})
            break
        sock.settimeout(None)
        conn = SSL.Connection(ctx, sock)
        conn.set_tlsext_host_name(server_name.encode())
        if session is not None:
            conn.set_session(session)
        conn.set_connect_state()
        try:
            conn.do_handshake()
            conn.sendall(("resumption %d from OpenSSL 4" % i).encode())
            # Reading also takes in the NewSessionTickets that precede the echo.
            data = conn.recv(65536)
            connections.append(resumption(conn, received=data.decode(errors="replace"), offered=session is not None))
            session = conn.get_session()
            conn.shutdown()
        except SSL.Error as e:
            connections.append({"ok": False, "error": str(e)})
        sock.close()
    print(json.dumps({"ok": len(connections) == count and all(c.get("ok") for c in connections),
                      "openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode(), "connections": connections}), flush=True)


def serve_forever(port, cert, key, groups):
    """Benchmark server: completes handshakes until killed."""
    ctx = server_context(cert, key, groups)
    listener = listen(port, 64)
    while True:
        sock, _ = listener.accept()
        conn = SSL.Connection(ctx, sock)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            conn.shutdown()
        except SSL.Error:
            pass
        sock.close()


def handshake_loop(port, ca, server_name, groups, count):
    """Benchmark client: `count` sequential full handshakes; prints handshakes per second."""
    import time
    ctx = client_context(ca, groups)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    start = time.perf_counter()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        conn = SSL.Connection(ctx, sock)
        conn.set_tlsext_host_name(server_name.encode())
        conn.set_connect_state()
        conn.do_handshake()
        sock.close()
    elapsed = time.perf_counter() - start
    print(json.dumps({"handshakes": count, "seconds": elapsed, "handshakes_per_second": count / elapsed}), flush=True)


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "server":
        server(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif role == "serve-forever":
        serve_forever(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif role == "resume-server":
        resume_server(port, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif role == "resume-client":
        resume_client(port, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif role == "loop":
        handshake_loop(port, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        client(port, sys.argv[3], sys.argv[4], sys.argv[5])
