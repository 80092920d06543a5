#!/bin/sh
# Regenerates the X.509 hardening test chains (X509HardeningTests.swift) with the OpenSSL CLI
# (3.0 or later). ECDSA P-384 keys, 100 years of validity so the committed PEM files do not
# expire. Run from anywhere: ./make.sh. Only the certificates and the key of the served leaf
# (nc-localhost.key, for the handshake test) are kept; other keys are deleted.
#
#   root.pem                 trust anchor
#   int-permit.pem           CA, critical nameConstraints permitted;DNS:allowed.example
#     nc-localhost.pem       leaf DNS:localhost                      (violates the constraint)
#     nc-allowed.pem         leaf DNS:www.allowed.example            (within it)
#     nc-cn-only.pem         leaf CN=www.other.example, no SAN   (violates it through the CN)
#   int-exclude.pem          CA, critical nameConstraints excluded;DNS:bad.example, excluded;IP:127.0.0.0/8
#     ex-dns.pem             leaf DNS:www.bad.example                (excluded)
#     ex-ip.pem              leaf DNS:good.example, IP:127.0.0.1     (excluded address)
#     ex-ok.pem              leaf DNS:good.example, IP:192.0.2.1     (outside both)
#   int-email.pem            CA, critical nameConstraints permitted;email:allowed.example (a form Q-SSL does not implement)
#     em-leaf.pem            leaf DNS:www.allowed.example
#   crit-unknown.pem         leaf under root, unknown extension 1.2.3.4.5 marked critical
#   noncrit-unknown.pem      leaf under root, the same extension not critical
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=36500

cat > "$tmp/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]

[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[int_permit]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical,permitted;DNS:allowed.example

[int_exclude]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical,excluded;DNS:bad.example,excluded;IP:127.0.0.0/255.0.0.0

[int_email]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical,permitted;email:allowed.example

[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[nc_localhost]
.include leaf
subjectAltName = DNS:localhost

[nc_allowed]
.include leaf
subjectAltName = DNS:www.allowed.example

[nc_cn_only]
.include leaf

[ex_dns]
.include leaf
subjectAltName = DNS:www.bad.example

[ex_ip]
.include leaf
subjectAltName = DNS:good.example,IP:127.0.0.1

[ex_ok]
.include leaf
subjectAltName = DNS:good.example,IP:192.0.2.1

[em_leaf]
.include leaf
subjectAltName = DNS:www.allowed.example

[crit_unknown]
.include leaf
subjectAltName = DNS:localhost
1.2.3.4.5 = critical,DER:05:00

[noncrit_unknown]
.include leaf
subjectAltName = DNS:localhost
1.2.3.4.5 = DER:05:00
EOF
# OpenSSL's config files have no section include; expand ".include leaf" by hand.
awk '
    /^\[leaf\]/ { inleaf = 1; print; next }
    /^\[/ { inleaf = 0 }
    inleaf && NF { leaf = leaf $0 "\n" }
    /^\.include leaf$/ { printf "%s", leaf; next }
    { print }
' "$tmp/ext.cnf" > "$tmp/v3.cnf"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$tmp/$1.key" 2>/dev/null; }
serial=4096
# issue NAME SUBJECT SECTION ISSUER
issue() {
    key "$1"
    openssl req -new -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr"
    serial=$((serial + 1))
    openssl x509 -req -in "$tmp/$1.csr" -CA "$4.pem" -CAkey "$tmp/$4.key" -set_serial "$serial" -days "$days" \
        -sha384 -extfile "$tmp/v3.cnf" -extensions "$3" -out "$1.pem" 2>/dev/null
}

key root
openssl req -new -x509 -key "$tmp/root.key" -subj "/CN=Q-SSL Hardening Test Root" -days "$days" -sha384 -set_serial 4096 \
    -config "$tmp/v3.cnf" -extensions root -out root.pem
issue int-permit "/CN=Permitted allowed.example CA" int_permit root
issue int-exclude "/CN=Excluded bad.example CA" int_exclude root
issue int-email "/CN=Email-constrained CA" int_email root
issue nc-localhost "/CN=localhost" nc_localhost int-permit
cp "$tmp/nc-localhost.key" nc-localhost.key
issue nc-allowed "/CN=www.allowed.example" nc_allowed int-permit
issue nc-cn-only "/CN=www.other.example" nc_cn_only int-permit
issue ex-dns "/CN=www.bad.example" ex_dns int-exclude
issue ex-ip "/CN=good.example" ex_ip int-exclude
issue ex-ok "/CN=good.example" ex_ok int-exclude
issue em-leaf "/CN=www.allowed.example" em_leaf int-email
issue crit-unknown "/CN=localhost" crit_unknown root
issue noncrit-unknown "/CN=localhost" noncrit_unknown root

# What OpenSSL itself says about each chain (for the record; the tests do not run OpenSSL).
for leaf in nc-localhost:int-permit nc-allowed:int-permit nc-cn-only:int-permit ex-dns:int-exclude ex-ip:int-exclude \
            ex-ok:int-exclude em-leaf:int-email crit-unknown: noncrit-unknown:; do
    name=${leaf%%:*}; inter=${leaf#*:}
    if [ -n "$inter" ]; then set -- -untrusted "$inter.pem"; else set --; fi
    printf '%-16s ' "$name"
    openssl verify -CAfile root.pem "$@" "$name.pem" 2>&1 | grep -E 'OK$|^error' | head -1
done
