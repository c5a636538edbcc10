package harness

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// WaitOK polls url with GET until it answers 200, failing t after timeout
// with the last error and logTail() (the service's last log lines), as the
// tests that start a real OpenStack service (keystone, neutron-server) do.
func WaitOK(t testing.TB, url string, timeout time.Duration, logTail func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s: %v\n%s", url, timeout, err, logTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// LastLines is the last n lines of s, for a service's log in a failure.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
