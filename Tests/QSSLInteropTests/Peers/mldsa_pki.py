"""ML-DSA certificates with PyPI's cryptography (OpenSSL 4.0): an independent X.509 implementation.

make DIR ALG          -> DIR/ca.pem, DIR/server.pem (leaf only), DIR/server.key (PKCS#8), ALG = mldsa44 | mldsa65 | mldsa87
sign44                -> one JSON line: an ML-DSA-44 public key and signatures over a message, with and without context
check CA LEAF KEY     -> verifies LEAF against CA and that KEY matches LEAF; prints one JSON line
"""
import datetime
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make(directory, alg):
    gen = {"mldsa44": mldsa.MLDSA44PrivateKey, "mldsa65": mldsa.MLDSA65PrivateKey, "mldsa87": mldsa.MLDSA87PrivateKey}[alg].generate
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = gen(), gen()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cryptography ML-DSA CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, None))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, None))
    open(f"{directory}/ca.pem", "wb").write(ca.public_bytes(serialization.Encoding.PEM))
    open(f"{directory}/server.pem", "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
    open(f"{directory}/server.key", "wb").write(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    print(json.dumps({"ok": True}), flush=True)


def check(ca_path, leaf_path, key_path):
    ca = x509.load_pem_x509_certificate(open(ca_path, "rb").read())
    leaf = x509.load_pem_x509_certificates(open(leaf_path, "rb").read())[0]
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    try:
        leaf.verify_directly_issued_by(ca)
        matches = key.public_key().public_bytes_raw() == leaf.public_key().public_bytes_raw()
        print(json.dumps({"ok": matches, "key_type": type(key).__name__, "signature": leaf.signature_algorithm_oid.dotted_string}), flush=True)
    except Exception as e:  # noqa: BLE001 - report any verification failure as data
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


def sign44():
    key = mldsa.MLDSA44PrivateKey.generate()
    message = b"Q-SSL verifies ML-DSA-44 on its own"
    print(json.dumps({"pk": key.public_key().public_bytes_raw().hex(), "message": message.hex(),
                      "signature": key.sign(message).hex(), "signature_ctx": key.sign(message, b"qssl").hex()}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "sign44":
        sign44()
    elif sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
