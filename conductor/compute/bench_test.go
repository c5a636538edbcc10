package compute_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// BenchmarkShow compares a server's show (GET /compute/v2.1/servers/{id},
// at 2.1 and 2.96) and the server listings with its node's show and the
// node listings, on one conductor, over real sockets.
func BenchmarkShow(b *testing.B) {
	l := startLab(b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	srv, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "b", FlavorRef: "gold", ImageRef: l.image}, nil).Extract()
	if err != nil {
		b.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, path, ver string }{
		{"servers", "/compute/v2.1/servers/" + srv.ID, ""},
		{"servers-2.96", "/compute/v2.1/servers/" + srv.ID, "2.96"},
		{"servers-list", "/compute/v2.1/servers", ""},
		{"servers-detail", "/compute/v2.1/servers/detail", ""},
		{"nodes", "/v1/nodes/bm0", ""},
		{"nodes-list", "/v1/nodes", ""},
		{"nodes-detail", "/v1/nodes/detail", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", l.url+bc.path, nil)
					req.Header.Set("X-OpenStack-Ironic-API-Version", "1.89")
					if bc.ver != "" {
						req.Header.Set("OpenStack-API-Version", "compute "+bc.ver)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("%s: %d", bc.path, resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
