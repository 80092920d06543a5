"""Mutual TLS peers (client certificates, TLS 1.3) for the Q-SSL interop tests.

OpenSSL 4.0 (bundled in PyPI's cryptography, through pyOpenSSL):
  openssl4-server PORT CERT KEY CLIENT_CA GROUPS        -> prints "ready"; requires and verifies a client
                                                           certificate, echoes one message, prints one JSON line
  openssl4-client PORT CA SERVERNAME GROUPS CERT KEY    -> connects with a client certificate, prints one JSON line
tlslite-ng 0.9 (which validates no chains: the chain is checked here with cryptography):
  tlslite-server PORT CERT KEY GROUPS CLIENT_CA         -> prints "ready"; requires a client certificate,
                                                           echoes one message, prints one JSON line
  tlslite-client PORT SERVERNAME GROUPS CERT KEY        -> connects with a client certificate, prints one JSON line

cryptography (OpenSSL 4.0) as an independent certificate maker:
  make-client DIR                                       -> DIR/client-ca.pem, DIR/client.pem (EKU clientAuth),
                                                           DIR/client.key (PKCS#8), all ML-DSA-65; one JSON line

The JSON line has "ok" and, on a server, what it learnt of the client: "client_subject", "client_key"
(the key type as cryptography names it) and, for OpenSSL, "verify" (the chain verification results
OpenSSL reported, depth by depth).
"""
import json
import socket
import sys


def cert_facts(cert):
    """Subject and key type of a cryptography certificate."""
    return {"client_subject": cert.subject.rfc4514_string(), "client_key": type(cert.public_key()).__name__}


# ---------------------------------------------------------------- certificates

def make_client(directory):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import mldsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = mldsa.MLDSA65PrivateKey.generate(), mldsa.MLDSA65PrivateKey.generate()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cryptography ML-DSA client CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, None))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cryptography-client"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenSSL 4 peers")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, None))
    with open(f"{directory}/client-ca.pem", "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/client.pem", "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/client.key", "wb") as f:
        f.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    print(json.dumps({"ok": True}), flush=True)


# ---------------------------------------------------------------- OpenSSL 4.0

def openssl4_context(groups):
    from OpenSSL import SSL
    from OpenSSL._util import lib as _lib
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    if _lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode()) != 1:
        raise SystemExit("OpenSSL refused groups " + groups)
    return ctx


def openssl4_version():
    from OpenSSL import SSL
    return SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()


def openssl4_server(port, cert, key, client_ca, groups):
    from OpenSSL import SSL, crypto
    ctx = openssl4_context(groups)
    ctx.use_certificate_chain_file(cert)
    ctx.use_privatekey_file(key)
    ctx.load_verify_locations(client_ca)
    # certificate_authorities in the CertificateRequest, as a real deployment sends it.
    with open(client_ca, "rb") as f:
        ctx.add_client_ca(crypto.load_certificate(crypto.FILETYPE_PEM, f.read()))
    verified = []

    def verify(conn, x509, errnum, depth, ok):
        verified.append({"depth": depth, "subject": x509.to_cryptography().subject.rfc4514_string(), "ok": bool(ok), "error": errnum})
        return ok

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    listener.settimeout(30)
    print("ready", flush=True)
    sock, _ = listener.accept()
    sock.settimeout(None)  # pyOpenSSL needs blocking sockets; the tests bound the run time
    conn = SSL.Connection(ctx, sock)
    conn.set_accept_state()
    try:
        conn.do_handshake()
        data = conn.recv(65536)
        conn.sendall(data)
        peer = conn.get_peer_certificate(as_cryptography=True)
        out = {"ok": peer is not None, "version": conn.get_protocol_version_name(), "openssl": openssl4_version(),
               "received": data.decode(errors="replace"), "verify": verified}
        if peer is not None:
            out.update(cert_facts(peer))
        print(json.dumps(out), flush=True)
        conn.shutdown()
    except SSL.Error as e:
        print(json.dumps({"ok": False, "error": str(e), "verify": verified}), flush=True)
    sock.close()


def openssl4_client(port, ca, server_name, groups, cert, key):
    from OpenSSL import SSL
    ctx = openssl4_context(groups)
    ctx.load_verify_locations(ca)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1])
    ctx.use_certificate_chain_file(cert)
    ctx.use_privatekey_file(key)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(None)
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(server_name.encode())
    conn.set_connect_state()
    try:
        conn.do_handshake()
        conn.sendall(b"hello from OpenSSL 4 with a client certificate")
        data = conn.recv(65536)
        print(json.dumps({"ok": True, "version": conn.get_protocol_version_name(), "openssl": openssl4_version(),
                          "received": data.decode(errors="replace")}), flush=True)
        conn.shutdown()
    except SSL.Error as e:
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
    sock.close()


# ---------------------------------------------------------------- tlslite-ng 0.9

def tlslite_settings(groups):
    from tlslite.api import HandshakeSettings
    s = HandshakeSettings()
    s.minVersion = (3, 4)
    s.maxVersion = (3, 4)
    s.eccCurves = groups.split(",")
    s.keyShares = groups.split(",")
    return s


def chain_checked_by_cryptography(der_chain, client_ca):
    """tlslite-ng validates no chains: check the leaf against the CA with cryptography."""
    from cryptography import x509
    leaf = x509.load_der_x509_certificate(bytes(der_chain[0]))
    with open(client_ca, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    try:
        leaf.verify_directly_issued_by(ca)
        chain_ok = True
    except Exception:  # noqa: BLE001 - report any verification failure as data
        chain_ok = False
    return leaf, chain_ok


def tlslite_server(port, cert, key, groups, client_ca):
    from tlslite.api import TLSConnection, X509CertChain, parsePEMKey
    from tlslite.errors import TLSError
    chain = X509CertChain()
    with open(cert) as f:
        chain.parsePemList(f.read())
    with open(key) as f:
        private = parsePEMKey(f.read(), private=True)
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
        conn.handshakeServer(certChain=chain, privateKey=private, reqCert=True, settings=tlslite_settings(groups))
        data = conn.read()
        conn.write(data)
        client_chain = conn.session.clientCertChain
        out = {"ok": client_chain is not None and client_chain.getNumCerts() > 0, "received": data.decode(errors="replace")}
        if out["ok"]:
            leaf, chain_ok = chain_checked_by_cryptography([c.bytes for c in client_chain.x509List], client_ca)
            out.update(cert_facts(leaf))
            out["chain_ok"] = chain_ok
            out["client_key_type"] = client_chain.x509List[0].certAlg
        print(json.dumps(out), flush=True)
        conn.close()
    except (TLSError, OSError) as e:
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


def tlslite_client(port, server_name, groups, cert, key):
    from tlslite.api import TLSConnection, X509CertChain, parsePEMKey
    from tlslite.errors import TLSError
    chain = X509CertChain()
    with open(cert) as f:
        chain.parsePemList(f.read())
    with open(key) as f:
        private = parsePEMKey(f.read(), private=True)
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn = TLSConnection(sock)
    try:
        conn.handshakeClientCert(certChain=chain, privateKey=private, serverName=server_name, settings=tlslite_settings(groups))
        conn.write(b"hello from tlslite-ng with a client certificate")
        data = conn.read()
        print(json.dumps({"ok": True, "received": data.decode(errors="replace")}), flush=True)
        conn.close()
    except (TLSError, OSError) as e:
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make-client":
        make_client(sys.argv[2])
        sys.exit(0)
    role, port, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    {"openssl4-server": openssl4_server, "openssl4-client": openssl4_client,
     "tlslite-server": tlslite_server, "tlslite-client": tlslite_client}[role](port, *rest)
