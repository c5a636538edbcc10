package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// FERRIC_PPROF_LISTEN (an address, loopback only: no authentication)
// serves Go's profiles (/debug/pprof/) for measuring the conductor under
// load (test/bench). Off by default.
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
