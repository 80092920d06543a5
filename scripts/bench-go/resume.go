// Resumption and in-process loads for scripts/bench-resumption (see main.go for the commands).
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

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
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	fmt.Printf("%d %d %.4f\n", n, resumed, float64(cpu.Microseconds())/1000/float64(n))
}
