"""tlslite-ng (pure Python, ML-KEM through kyber-py) as a TLS 1.3 peer.

server: python tlslite_peer.py server PORT CERT KEY GROUPS              -> prints "ready", echoes once
client: python tlslite_peer.py client PORT SERVERNAME GROUPS KEYSHARES  -> prints one JSON line
GROUPS and KEYSHARES are comma-separated tlslite names (e.g. secp384r1mlkem1024,x25519);
TLSLITE_VERSION=1.2 in the environment limits the peer to TLS 1.2; TLSLITE_NO_EMS=1 turns off
extended master secret; TLSLITE_PSK_MODES=psk_ke (comma-separated) sets the TLS 1.3 PSK key
exchange modes offered or accepted.

Resumption (one JSON line at the end, with one entry per connection under "connections"):
resume-server PORT CERT KEY GROUPS COUNT       -> prints "ready", serves COUNT connections one after
    the other with one session cache; TLSLITE_TICKETS=0 issues no tickets (TLS 1.2: session IDs
    only), TLSLITE_SESSION_CACHE=0 keeps no session-ID cache (TLS 1.2: tickets only)
resume-client PORT SERVERNAME GROUPS COUNT     -> COUNT connections, each offering the session of
    the one before (session= in handshakeClientCert); "renewed_tls12_ticket" tells whether a
    resumed TLS 1.2 handshake brought a new ticket. tlslite-ng keeps the old session (and its
    old ticket) after such a handshake; TLSLITE_TAKE_RENEWED_TICKETS=1 offers the new one next.
tlslite-ng validates no certificate chains; the Q-SSL side does.
"""
import json
import os
import socket
import sys

from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
from tlslite.errors import TLSError
from tlslite.constants import GroupName


VERSION = (3, 4)


def settings(groups, key_shares=None):
    s = HandshakeSettings()
    s.minVersion = VERSION
    s.maxVersion = VERSION
    s.eccCurves = groups.split(",")
    s.keyShares = (key_shares or groups).split(",") if key_shares != "" else []
    if os.environ.get("TLSLITE_NO_EMS") == "1":
        # A TLS 1.2 peer without RFC 7627: the legacy master secret.
        s.useExtendedMasterSecret = False
        s.requireExtendedMasterSecret = False
    if os.environ.get("TLSLITE_PSK_MODES"):
        s.psk_modes = os.environ["TLSLITE_PSK_MODES"].split(",")
    return s


def describe(conn, **extra):
    out = {"ok": True, "version": {4: "TLSv1.3", 3: "TLSv1.2"}.get(conn.version[1], str(conn.version)),
           "cipher": conn.getCipherName(), "group": GroupName.toStr(conn.session.ecdhCurve) if hasattr(conn.session, "ecdhCurve") else None}
    out.update(extra)
    return out


def server(port, cert, key, groups):
    chain = X509CertChain()
    chain.parsePemList(open(cert).read())
    private = parsePEMKey(open(key).read(), private=True)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    listener.settimeout(60)
    print("ready", flush=True)
    sock, _ = listener.accept()
    sock.settimeout(60)
    conn = TLSConnection(sock)
    try:
        conn.handshakeServer(certChain=chain, privateKey=private, settings=settings(groups))
        data = conn.read()
        conn.write(data)
        print(json.dumps(describe(conn, received=data.decode(errors="replace"))), flush=True)
        conn.close()
    except (TLSError, OSError) as e:
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


def client(port, server_name, groups, key_shares):
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn = TLSConnection(sock)
    try:
        conn.handshakeClientCert(serverName=server_name, settings=settings(groups, key_shares))
        conn.write(b"hello from tlslite-ng")
        data = conn.read()
        print(json.dumps(describe(conn, received=data.decode(errors="replace"))), flush=True)
        conn.close()
    except (TLSError, OSError) as e:
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


def resume_server(port, cert, key, groups, count):
    from tlslite.api import SessionCache
    import tlslite.tlsconnection as tlsconnection
    # tlslite-ng's server sets `resumed` only for TLS 1.2; a TLS 1.3 PSK it selected shows as a
    # binder it verified, so count those.
    verified = []
    original_verify_binder = tlsconnection.HandshakeHelpers.verify_binder

    def verify_binder(*args, **kwargs):
        result = original_verify_binder(*args, **kwargs)
        verified.append(True)
        return result
    tlsconnection.HandshakeHelpers.verify_binder = staticmethod(verify_binder)
    chain = X509CertChain()
    chain.parsePemList(open(cert).read())
    private = parsePEMKey(open(key).read(), private=True)
    s = settings(groups)
    if os.environ.get("TLSLITE_TICKETS") != "0":
        s.ticketKeys = [bytearray(os.urandom(32))]
    else:
        s.ticketKeys = []
        s.ticket_count = 0
    cache = SessionCache() if os.environ.get("TLSLITE_SESSION_CACHE") != "0" else None
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    listener.settimeout(60)
    print("ready", flush=True)
    connections = []
    for _ in range(count):
        try:
            sock, _ = listener.accept()
        except OSError as e:
            connections.append({"ok": False, "error": repr(e)})
            break
        sock.settimeout(60)
        conn = TLSConnection(sock)
        del verified[:]
        try:
            conn.handshakeServer(certChain=chain, privateKey=private, settings=s, sessionCache=cache)
            data = conn.read()
            conn.write(data)
            resumed = bool(conn.resumed) or (conn.version > (3, 3) and bool(verified))
            connections.append(describe(conn, received=data.decode(errors="replace"), resumed=resumed))
            conn.close()
        except (TLSError, OSError) as e:
            connections.append({"ok": False, "error": repr(e)})
        sock.close()
    print(json.dumps({"ok": all(c.get("ok") for c in connections) and len(connections) == count,
                      "connections": connections}), flush=True)


def resume_client(port, server_name, groups, count):
    session = None
    connections = []
    for i in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError as e:
            connections.append({"ok": False, "error": repr(e)})
            break
        conn = TLSConnection(sock)
        try:
            offered_tickets = [t.ticket for t in (session.tls_1_0_tickets or [])] if session else []
            conn.handshakeClientCert(serverName=server_name, settings=settings(groups), session=session)
            # A ticket received in a resumed TLS 1.2 handshake lands in the connection's list,
            # not in the (old) session it resumed.
            renewed = bool(conn.resumed and conn.version <= (3, 3) and conn.tls_1_0_tickets
                           and conn.tls_1_0_tickets[-1].ticket not in offered_tickets)
            message = "resumption %d from tlslite-ng" % i
            conn.write(message.encode())
            # Reading also takes in the TLS 1.3 NewSessionTickets that precede the echo.
            data = conn.read()
            connections.append(describe(conn, received=data.decode(errors="replace"), resumed=bool(conn.resumed),
                                        offered=session is not None,
                                        tickets=len(conn.session.tickets or []) if conn.session else 0,
                                        tls12_tickets=len(conn.session.tls_1_0_tickets or []) if conn.session else 0,
                                        session_id=bool(conn.session and conn.session.sessionID),
                                        renewed_tls12_ticket=renewed))
            session = conn.session
            if renewed and os.environ.get("TLSLITE_TAKE_RENEWED_TICKETS") == "1":
                session.tls_1_0_tickets[:] = conn.tls_1_0_tickets
            conn.close()
        except (TLSError, OSError) as e:
            connections.append({"ok": False, "error": repr(e)})
        sock.close()
    print(json.dumps({"ok": all(c.get("ok") for c in connections) and len(connections) == count,
                      "connections": connections}), flush=True)


if __name__ == "__main__":
    # TLSLITE_VERSION=1.2 limits the peer to TLS 1.2.
    import os
    if os.environ.get("TLSLITE_VERSION") == "1.2":
        VERSION = (3, 3)
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "server":
        server(port, sys.argv[3], sys.argv[4], sys.argv[5])
    elif role == "resume-server":
        resume_server(port, sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif role == "resume-client":
        resume_client(port, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        client(port, sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
