package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// zeros streams a JSON array of n zeros ("[0,0,...,0]") without holding
// it in memory.
type zeros struct{ n, i int }

func (z *zeros) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) {
		switch {
		case z.i == 0:
			p[w] = '['
		case z.i == 2*z.n:
			p[w] = ']'
		case z.i > 2*z.n:
			return w, io.EOF
		case z.i%2 == 1:
			p[w] = '0'
		default:
			p[w] = ','
		}
		z.i++
		w++
	}
	return w, nil
}

// TestHugeHeartbeat sends a 60 MB [0,0,...] body to the ramdisk's
// heartbeat (public, before any token check), with a declared length and
// chunked: the answer is a small 413 and the server allocates a small
// fraction of the body.
func TestHugeHeartbeat(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.96"
	node := e.createNode(map[string]any{}).str("uuid")
	const n = 30 << 20 // 30M zeros: 60 MB of JSON
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = &zeros{n: n}
			req, _ := http.NewRequest("POST", e.url+"/v1/heartbeat/"+node, body)
			req.Header.Set(hdrLegacyVersion, "1.96")
			req.Header.Set("Content-Type", "application/json")
			if !chunked {
				req.ContentLength = 2*n + 1
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST heartbeat: %v", err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("status %d, %d bytes of answer, %d KiB allocated while serving, heap %d -> %d KiB",
				res.StatusCode, len(raw), alloc>>10, before.HeapAlloc>>10, after.HeapAlloc>>10)
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413: %.300s", res.StatusCode, raw)
			}
			if len(raw) > 1024 {
				t.Errorf("answer of %d bytes, want a short error", len(raw))
			}
			if alloc > 16<<20 {
				t.Errorf("%d MiB allocated serving a 60 MB heartbeat, want a small bound", alloc>>20)
			}
		})
	}
}

// TestBoundedBodies: each route's limit, short error messages and the
// JSON nesting bound.
func TestBoundedBodies(t *testing.T) {
	e := newTestEnv(t, nil)
	node := e.createNode(map[string]any{}).str("uuid")
	big := `{"driver":"fake-hardware","extra":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"node create past 1 MiB", "POST", "/v1/nodes", big, 413},
		{"patch past 1 MiB", "PATCH", "/v1/nodes/" + node, `[{"op":"add","path":"/extra/a","value":"` + strings.Repeat("b", 2<<20) + `"}]`, 413},
		{"heartbeat past 64 KiB", "POST", "/v1/heartbeat/" + node, `{"callback_url":"` + strings.Repeat("c", 100<<10) + `"}`, 413},
		{"deep nesting", "POST", "/v1/nodes", `{"driver":"fake-hardware","extra":{"a":` + deep + `}}`, 400},
		{"deep patch", "PATCH", "/v1/nodes/" + node, deep, 400},
		{"huge non-object", "POST", "/v1/nodes", "[" + strings.Repeat(`"xxxxxxxxxx",`, 50000) + "1]", 400},
		{"huge patch value", "PATCH", "/v1/nodes/" + node, `{"op":"add","path":"/extra/a","value":"` + strings.Repeat("d", 500<<10) + `"}`, 400},
		{"inventory past 16 MiB", "POST", "/v1/continue_inspection", `{"x":"` + strings.Repeat("e", 17<<20) + `"}`, 413},
		{"inventory within 16 MiB", "POST", "/v1/continue_inspection", `{"inventory":{"interfaces":[]},"x":"` + strings.Repeat("e", 3<<20) + `"}`, 400}, // read whole, then refused: no inspector here,
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, hdrLegacyVersion, "1.96")
			if r.code != tc.code {
				t.Fatalf("%s %s = %d, want %d: %.300s", tc.method, tc.path, r.code, tc.code, r.raw)
			}
			if len(r.raw) > 1024 {
				t.Errorf("answer of %d bytes echoes the input: %.300s", len(r.raw), r.raw)
			}
		})
	}
	if got := e.do("GET", "/v1/nodes/"+node, nil).j["extra"]; fmt.Sprint(got) != "map[]" {
		t.Errorf("extra after refused writes = %v, want empty", got)
	}
}

// TestMalformedChunked: a body whose chunked encoding is broken is the
// client's fault (400), not the server's.
func TestMalformedChunked(t *testing.T) {
	e := newTestEnv(t, nil)
	addr := strings.TrimPrefix(e.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/nodes HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", addr)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed chunked body = %d, want 400: %s", res.StatusCode, raw)
	}
}

// TestAgentCertificatePinned: the ramdisk's auto-TLS certificate
// (agent_verify_ca) recorded by its first heartbeat cannot be swapped by a
// later one, as in Ironic; the same certificate again is fine.
func TestAgentCertificatePinned(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.68"
	id := e.createNode(map[string]any{"name": "tls-agent", "driver_info": map[string]any{"fast_track": true}}).str("uuid")
	r := e.must(200, e.do("GET", "/v1/lookup?node_uuid="+id, nil), "lookup")
	token, _ := r.j["config"].(map[string]any)["agent_token"].(string)
	e.addSecret(token)
	hb := func(ca string) *resp {
		return e.do("POST", "/v1/heartbeat/"+id, map[string]any{"callback_url": "https://127.0.0.1:9999",
			"agent_version": "9.0.0", "agent_token": token, "agent_verify_ca": ca})
	}
	certA := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	certB := "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
	e.must(202, hb(certA), "first heartbeat with a certificate")
	r = e.must(400, hb(certB), "heartbeat with another certificate")
	if !strings.Contains(r.fault(), `Detected change in ramdisk provided "agent_verify_ca"`) {
		t.Errorf("message %q", r.fault())
	}
	e.must(202, hb(certA), "heartbeat with the same certificate")
	dii := e.do("GET", "/v1/nodes/"+id, nil).j["driver_internal_info"].(map[string]any)
	if dii["agent_verify_ca"] != certA {
		t.Errorf("agent_verify_ca = %v, want the first certificate", dii["agent_verify_ca"])
	}
}
