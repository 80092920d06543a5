// A complete, commented example of the configuration file (`qssl serve --config FILE`).

extension ServeConfigFile {
    /// A complete commented configuration that parses cleanly: every key, with its default noted.
    public static let sampleYAML = #"""
        # qssl serve --config /etc/qssl/serve.yaml      (check it with: qssl check-config FILE)
        #
        # Durations: 10s, 500ms, 5m, 1h, 1h30m, 2d, or a bare number of seconds.
        # Addresses: HOST:PORT, [IPv6]:PORT, or unix:/absolute/path.
        # Relative file paths are relative to the working directory of qssl.

        access-log: json                   # text (default) or json: one line per connection
        metrics: 127.0.0.1:9100            # Prometheus /metrics and /healthz; default: off
        drain-timeout: 30s                 # on shutdown, time for open connections to finish (default 30s)
        threads: 2                         # event-loop threads, 1 to 1024, read at start (default: one per core)

        hsm:                               # only needed for pkcs11: certificates and keys
          module: /usr/lib/softhsm/libsofthsm2.so
          pin-file: /etc/qssl/pin          # the user PIN; default: no login
          sign-threads: 4                  # 1 to 64 (default 1)

        defaults:                          # inherited by every listener (any listener key but name, listen, backend)
          tls-versions: ["1.3", "1.2"]     # default: both
          groups: [SecP384r1MLKEM1024, X25519MLKEM768, x25519]   # default: all hybrids, then x25519, secp384r1, secp256r1
          pq-required: false               # true: refuse handshakes without ML-KEM (default false)
          session-timeout: 3600s           # 1s to 604800s (default 3600s)
          session-cache: true              # TLS 1.2 session-ID cache (default true)
          tls13-tickets: 2                 # 0 to 16 (default 2)
          limits:                          # merged key by key with a listener's own limits:
            handshake-timeout: 10s         # default 10s
            idle-timeout: 300s             # 0 = none (default 300s)
            max-lifetime: 0                # 0 = none (default)
            max-connections: 10000         # default 10000
            max-handshakes: 256            # concurrent handshakes (default 256)
            handshake-overflow: wait       # wait (default) or refuse
            handshake-rate-per-source: 0   # per second per client address, 0 = unlimited (default)
            max-request-bytes: 65536       # for the built-in http backend (default 65536)

        listeners:                         # at least one
          - name: public-web               # optional, unique
            listen: ["0.0.0.0:443", "[::]:443"]   # one address or a list
            backend: 127.0.0.1:8080        # HOST:PORT, unix:/path, echo or http (required)
            backend-connect-timeout: 5s    # default 5s
            proxy-protocol: v2             # sent to the backend: none (default), v1, v2
            accept-proxy-protocol: false   # from a load balancer: false (default), true, v1, v2, either
            certificates:                  # at least one (here or in defaults:)
              - cert: /etc/qssl/pq-chain.pem
                key: /etc/qssl/pq-key.pem
                server-names: ["www.example.com", "*.example.com"]   # none: a default pair
              - cert: /etc/qssl/fallback-chain.pem
                key: "pkcs11:token=qssl;object=fallback-key"          # a key in the hsm: token
            unknown-server-name: default   # default (answer with a default pair) or reject
            alpn: [h2, http/1.1]           # default: none
            ticket-keys: /etc/qssl/ticket.keys   # none = no tickets; absent = in-memory keys, rotated
            staple: true                   # staple OCSP responses (default false)
            limits:
              max-handshakes: 512          # the other limits come from defaults:

          - name: mtls-api
            listen: "[::1]:8443"
            backend: unix:/run/api.sock
            pq-required: true
            groups: [X25519MLKEM768, SecP384r1MLKEM1024]
            client-auth: required          # none (default), optional, required
            client-ca: /etc/qssl/client-cas.pem   # required unless client-auth is none
            crl: [/etc/qssl/ca.crl]        # a path or a list (default none)
            certificates:
              - cert: /etc/qssl/api-chain.pem
                key: /etc/qssl/api-key.pem
                server-names: [api.example.com]
            unknown-server-name: reject    # an unknown SNI name gets an unrecognized_name alert
            session-store: "redis+cluster://10.0.0.5:6379,10.0.0.6:6379"   # share session IDs and ticket keys with a fleet (default: none)
            fleet-key: /etc/qssl/fleet.key # required with session-store (qssl fleet-key generate)
            service-name: api              # what sessions are bound to (default: from the certificates' keys)
            session-store-timeout: 50ms    # the longest a handshake waits for Redis (default 50ms)
            ticket-rotation: 1h            # a new fleet ticket key every… (default 1h)
            ticket-distribution: 60s       # a key exists this long before any node seals with it (default 60s)
        """#
}
