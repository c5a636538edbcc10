package compute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// lab is a conductor with fake-hardware nodes and an active image.
type lab struct {
	t     testing.TB
	url   string
	image string
}

func (l *lab) do(method, path string, body any, want int) map[string]any {
	l.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
	if _, ok := body.([]byte); ok {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.89")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, rb, want)
	}
	var out map[string]any
	_ = json.Unmarshal(rb, &out)
	return out
}

// startLab starts a conductor with n available fake-hardware nodes of
// resource class "gold" (one port each) and an active image "cirros".
func startLab(t testing.TB, nodes int) *lab {
	c := harness.Start(t, service.Config{})
	l := &lab{t: t, url: c.URL}
	l.setup(nodes)
	return l
}

// setup uploads the image and enrolls nodes nodes.
func (l *lab) setup(nodes int) {
	img := l.do("POST", "/images/v2/images", map[string]any{"name": "cirros", "disk_format": "raw", "container_format": "bare"}, 201)
	l.image = img["id"].(string)
	l.do("PUT", "/images/v2/images/"+l.image+"/file", bytes.Repeat([]byte("x"), 4096), 204)
	for i := range nodes {
		n := l.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("bm%d", i),
			"resource_class": "gold"}, 201)
		id := n["uuid"].(string)
		l.do("POST", "/v1/ports", map[string]any{"node_uuid": id, "address": fmt.Sprintf("52:54:00:00:00:%02x", i),
			"extra": map[string]any{"ip_address": fmt.Sprintf("192.0.2.%d", 10+i)}}, 201)
		l.do("PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": "manage"}, 202)
		l.wait(id, "manageable")
		l.do("PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": "provide"}, 202)
		l.wait(id, "available")
	}
}

func (l *lab) wait(node, state string) {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n := l.do("GET", "/v1/nodes/"+node, nil, 200)
		if n["provision_state"] == state {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("node %s did not reach %s", node, state)
}

func (l *lab) client() *gophercloud.ServiceClient {
	return &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{}, Endpoint: l.url + "/compute/v2.1/", Type: "compute"}
}

// TestGophercloudServers drives the servers API with gophercloud's
// compute client: key pair, flavor, create and wait ACTIVE, list, show,
// metadata, reboot, stop/start, rebuild, delete.
func TestGophercloudServers(t *testing.T) {
	l := startLab(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc := l.client()

	kp, err := keypairs.Create(ctx, cc, keypairs.CreateOpts{Name: "k1"}).Extract()
	if err != nil || !strings.Contains(kp.PrivateKey, "PRIVATE KEY") || !strings.HasPrefix(kp.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("keypair create: %+v %v", kp, err)
	}
	pages, err := flavors.ListDetail(cc, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := flavors.ExtractFlavors(pages)
	if len(fl) != 1 || fl[0].ID != "gold" {
		t.Fatalf("flavors %+v, want one, gold", fl)
	}
	specs, err := flavors.ListExtraSpecs(ctx, cc, "gold").Extract()
	if err != nil || specs["resources:CUSTOM_GOLD"] != "1" {
		t.Fatalf("extra specs %v %v", specs, err)
	}

	create := keypairs.CreateOptsExt{CreateOptsBuilder: servers.CreateOpts{Name: "web1", FlavorRef: "gold", ImageRef: l.image,
		Metadata: map[string]string{"role": "web"}}, KeyName: "k1"}
	srv, err := servers.Create(ctx, cc, create, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if srv.AdminPass == "" {
		t.Fatalf("create answered no adminPass: %+v", srv)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	got, err := servers.Get(ctx, cc, srv.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.AdminPass != "" || got.Name != "web1" || got.KeyName != "k1" || got.Metadata["role"] != "web" || got.Progress != 100 ||
		got.Image["id"] != l.image || got.Flavor["id"] != "gold" {
		t.Fatalf("server %+v", got)
	}
	if addrs := fmt.Sprint(got.Addresses); !strings.Contains(addrs, "192.0.2.10") {
		t.Fatalf("addresses %s, want the port's 192.0.2.10", addrs)
	}
	node := l.do("GET", "/v1/nodes/bm0", nil, 200)
	if node["instance_uuid"] != srv.ID || node["provision_state"] != "active" ||
		node["instance_info"].(map[string]any)["image_source"] != l.image {
		t.Fatalf("node %v %v %v", node["instance_uuid"], node["provision_state"], node["instance_info"])
	}

	pages, err = servers.List(cc, servers.ListOpts{Name: "web"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := servers.ExtractServers(pages); len(all) != 1 || all[0].ID != srv.ID || all[0].Status != "ACTIVE" {
		t.Fatalf("list %+v", all)
	}
	pages, _ = servers.List(cc, servers.ListOpts{Name: "^db"}).AllPages(ctx)
	if all, _ := servers.ExtractServers(pages); len(all) != 0 {
		t.Fatalf("list name=^db: %+v", all)
	}

	md, err := servers.UpdateMetadata(ctx, cc, srv.ID, servers.MetadataOpts{"env": "prod"}).Extract()
	if err != nil || md["env"] != "prod" || md["role"] != "web" {
		t.Fatalf("metadata %v %v", md, err)
	}
	if err := servers.Reboot(ctx, cc, srv.ID, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if err := servers.Stop(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "SHUTOFF"); err != nil {
		t.Fatal(err)
	}
	if err := servers.Stop(ctx, cc, srv.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("stopping a stopped server: %v, want 409", err)
	}
	if err := servers.Start(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	rb, err := servers.Rebuild(ctx, cc, srv.ID, servers.RebuildOpts{ImageRef: l.image}).Extract()
	if err != nil || rb.ID != srv.ID {
		t.Fatalf("rebuild %+v %v", rb, err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}

	pw, err := servers.Rescue(ctx, cc, srv.ID, servers.RescueOpts{}).Extract()
	if err != nil || pw == "" {
		t.Fatalf("rescue: %q %v", pw, err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "RESCUE"); err != nil {
		t.Fatal(err)
	}
	if err := servers.Unrescue(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}

	if err := servers.Delete(ctx, cc, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		_, err := servers.Get(ctx, cc, srv.ID).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), nil
	}); err != nil {
		t.Fatal(err)
	}
	l.wait("bm0", "available")
	if n := l.do("GET", "/v1/nodes/bm0", nil, 200); n["instance_uuid"] != nil || n["allocation_uuid"] != nil {
		t.Fatalf("node after delete: instance %v allocation %v", n["instance_uuid"], n["allocation_uuid"])
	}
}
