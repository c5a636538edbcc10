package service

import (
	"net/http"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/httpserver"
)

// streaming serves boot files and image transfers (uploads, downloads,
// the image cache) with a progress deadline instead of the server's total
// read and write timeouts: a multi-gigabyte image moves at any steady
// rate, a stalled transfer is cut after timeout.
func streaming(h http.Handler, timeout time.Duration) http.Handler {
	p := httpserver.Progress(timeout, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/boot/") || strings.HasPrefix(r.URL.Path, "/images/") {
			p.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
