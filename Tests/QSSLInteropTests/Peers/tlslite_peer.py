"""tlslite-ng (pure Python, ML-KEM through kyber-py) as a TLS 1.3 peer.

server: python tlslite_peer.py server PORT CERT KEY GROUPS              -> prints "ready", echoes once
client: python tlslite_peer.py client PORT SERVERNAME GROUPS KEYSHARES  -> prints one JSON line
GROUPS and KEYSHARES are comma-separated tlslite names (e.g. secp384r1mlkem1024,x25519);
TLSLITE_VERSION=1.2 in the environment limits the peer to TLS 1.2; TLSLITE_NO_EMS=1 turns off
extended master secret.
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


if __name__ == "__main__":
    # TLSLITE_VERSION=1.2 limits the peer to TLS 1.2.
    import os
    if os.environ.get("TLSLITE_VERSION") == "1.2":
        VERSION = (3, 3)
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "server":
        server(port, sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        client(port, sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
