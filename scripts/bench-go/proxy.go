// Loads for scripts/bench --proxy: handshakes, relayed bytes, latency, idle connections (see
// main.go for the commands).
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
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

// runHandshakes makes n echoHandshake connections, concurrency at a time, and hands each one
// that succeeded to keep (from several goroutines at once); the failures are counted.
func runHandshakes(addr string, config *tls.Config, n, concurrency int, keep func(net.Conn)) *failureCount {
	var wg sync.WaitGroup
	var failures failureCount
	var next atomic.Int64
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
				keep(conn)
			}
		}()
	}
	wg.Wait()
	return &failures
}

func proxyLoad(addr string, config *tls.Config, n, concurrency int) {
	start := time.Now()
	failures := runHandshakes(addr, config, n, concurrency, func(c net.Conn) { c.Close() })
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
	var mu sync.Mutex
	conns := make([]net.Conn, 0, n)
	failures := runHandshakes(addr, config, n, concurrency, func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
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
