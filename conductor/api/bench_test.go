package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// benchServer is an API handler over a store filled with n nodes (written
// directly, in batches).
func benchServer(b *testing.B, n int) *Server {
	b.Helper()
	st, err := store.OpenBolt(b.TempDir() + "/ferric.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	for i := 0; i < n; i += 500 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for j := i; j < min(i+500, n); j++ {
				name := fmt.Sprintf("bench-%d", j)
				rc := "bench"
				nd := &store.Node{UUID: uuid.NewString(), Name: &name, Driver: "fake-hardware", ProvisionState: "enroll",
					ResourceClass: &rc, Properties: store.Object{"cpus": 8, "memory_mb": 16384, "local_gb": 100},
					DriverInfo: store.Object{"ipmi_password": "x"}, Interfaces: map[string]string{"deploy": "fake", "power": "fake"}}
				if err := tx.PutNode(nd); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(manager.Config{Store: st, Log: log, Hostname: "bench"})
	srv, err := New(Config{Store: st, Manager: mgr, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkListNodes10k lists 10,000 nodes through the API handler, 1000
// per page as Ironic pages them (10 requests per iteration).
func BenchmarkListNodes10k(b *testing.B) {
	for _, detail := range []bool{false, true} {
		b.Run(fmt.Sprintf("detail=%v", detail), func(b *testing.B) {
			srv := benchServer(b, 10000)
			path := "/v1/nodes"
			if detail {
				path = "/v1/nodes/detail"
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				next, pages, bytes := path, 0, 0
				for next != "" {
					req := httptest.NewRequest(http.MethodGet, next, nil)
					req.Header.Set(hdrLegacyVersion, "1.78")
					rec := httptest.NewRecorder()
					srv.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%s: %d %s", next, rec.Code, rec.Body.Bytes())
					}
					bytes += rec.Body.Len()
					pages++
					next = ""
					if i := indexNext(rec.Body.Bytes()); i != "" {
						next = i
					}
				}
				if pages != 11 { // 10 full pages + the empty one after an exactly full page
					b.Fatalf("%d pages", pages)
				}
				b.SetBytes(int64(bytes))
			}
		})
	}
}

// indexNext extracts the path+query of "next" from a collection body
// (which ends with it: read from the end, not decoded whole).
func indexNext(body []byte) string {
	i := bytes.LastIndex(body, []byte(`"next":`))
	if i < 0 {
		return ""
	}
	var next string
	dec := json.NewDecoder(bytes.NewReader(body[i+len(`"next":`):]))
	if err := dec.Decode(&next); err != nil || next == "" {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil {
		return ""
	}
	return u.RequestURI()
}
