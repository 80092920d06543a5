#!/usr/bin/env bash
# Makes the OpenSSL-side revocation fixtures with the OpenSSL 3.0 CLI (`openssl ca`): a P-384 CA,
# two leaf certificates for localhost, one of them revoked (keyCompromise), and the CA's CRL.
# Run from this directory; the outputs are committed.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = qssl
[ qssl ]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
crlnumber = $work/crlnumber
default_md = sha384
default_days = 3650
default_crl_days = 3650
policy = any
copy_extensions = copy
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
[ crl ]
authorityKeyIdentifier = keyid:always
CNF
touch "$work/index.txt"; echo "unique_subject = no" > "$work/index.txt.attr"; echo 1000 > "$work/serial"; echo 01 > "$work/crlnumber"
openssl ecparam -name secp384r1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Q-SSL CRL Test CA" -days 3650 -sha384 -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
for name in good revoked; do
    openssl ecparam -name secp384r1 -genkey -noout -out $name.key
    openssl req -new -key $name.key -subj "/CN=localhost" -out "$work/$name.csr"
    openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile ca.key -extensions leaf -in "$work/$name.csr" -out $name.pem -notext
done
openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile ca.key -revoke revoked.pem -crl_reason keyCompromise
openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile ca.key -gencrl -crlexts crl -out ca.crl.pem
openssl crl -in ca.crl.pem -outform DER -out ca.crl.der
openssl x509 -in revoked.pem -noout -serial > revoked.serial
