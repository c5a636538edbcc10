package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"time"
)

// FERRIC_PPROF_LISTEN (an address, loopback only: no authentication)
// serves Go's profiles (/debug/pprof/) for measuring the conductor under
// load (test/bench). Off by default. FERRIC_PPROF_CONTENTION=1 also
// records the block and mutex profiles (every wait of a millisecond or
// more, and a sample of shorter ones; a cost of its own).
func init() {
	addr := os.Getenv("FERRIC_PPROF_LISTEN")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "ferric-conductor: FERRIC_PPROF_LISTEN %q: not a loopback address, ignored\n", addr)
		return
	}
	if os.Getenv("FERRIC_PPROF_CONTENTION") == "1" {
		runtime.SetBlockProfileRate(int(time.Millisecond))
		runtime.SetMutexProfileFraction(10)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferric-conductor: FERRIC_PPROF_LISTEN: %v\n", err)
		return
	}
	go func() { _ = http.Serve(ln, mux) }() //nolint:gosec // loopback, measurement only
}
