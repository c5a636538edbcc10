package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// walk lists path page by page following next and returns the pages and
// bytes read.
func walk(tb testing.TB, srv *Server, path string) (pages, bytes int) {
	tb.Helper()
	for next := path; next != ""; {
		req := httptest.NewRequest(http.MethodGet, next, nil)
		req.Header.Set(hdrLegacyVersion, "1.78")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 {
			tb.Fatalf("%s: %d %s", next, rec.Code, rec.Body.Bytes())
		}
		bytes += rec.Body.Len()
		pages++
		next = indexNext(rec.Body.Bytes())
	}
	return pages, bytes
}

// heapMiB is the live heap after a collection.
func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkListNodes100k walks the detailed listing of 100,000 nodes, 1,000
// a page with marker (101 requests an iteration), and a listing filtered by
// provision state that matches none of them. It reports the live heap
// after the store was filled and after the walks.
func BenchmarkListNodes100k(b *testing.B) {
	const n = 100000
	srv := benchServer(b, n)
	b.ReportMetric(heapMiB(), "heap-MiB-filled")
	b.Run("detail-walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pages, bytes := walk(b, srv, "/v1/nodes?detail=True"); pages != n/MaxLimit+1 {
				b.Fatalf("%d pages", pages)
			} else {
				b.SetBytes(int64(bytes))
			}
		}
		b.ReportMetric(heapMiB(), "heap-MiB")
	})
	b.Run("filtered-none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pages, _ := walk(b, srv, "/v1/nodes?provision_state=active&resource_class=bench"); pages != 1 {
				b.Fatalf("%d pages", pages)
			}
		}
	})
	b.Run("filtered-all-first-page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			walkOne(b, srv, fmt.Sprintf("/v1/nodes?provision_state=enroll&limit=%d", 100))
		}
	})
}

func walkOne(tb testing.TB, srv *Server, path string) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set(hdrLegacyVersion, "1.78")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 {
		tb.Fatalf("%s: %d %s", path, rec.Code, rec.Body.Bytes())
	}
}

// BenchmarkRenderNode renders one node's detailed JSON (no item cache).
func BenchmarkRenderNode(b *testing.B) {
	srv := benchServer(b, 1)
	n := srv.st.Nodes(nil)[0]
	req := httptest.NewRequest(http.MethodGet, "/v1/nodes?detail=True", nil)
	c := srv.echo.NewContext(req, httptest.NewRecorder())
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendItem(buf[:0], c, nodeFieldsSorted, n, 78, nil)
	}
	b.SetBytes(int64(len(buf)))
}
