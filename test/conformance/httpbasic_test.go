package conformance

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	inspbasic "github.com/gophercloud/gophercloud/v2/openstack/baremetalintrospection/httpbasic"
	inspnoauth "github.com/gophercloud/gophercloud/v2/openstack/baremetalintrospection/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetalintrospection/v1/introspection"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestGophercloudHTTPBasic drives a conductor under --auth http_basic with
// gophercloud's http_basic clients for Ironic and ironic-inspector, as
// metal3's baremetal-operator does; the noauth clients are refused 401.
func TestGophercloudHTTPBasic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("metal3-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("metal3:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inspAddr := harness.FreeAddr(t, "127.0.0.1")
	api := harness.Start(t, service.Config{StateDir: filepath.Join(dir, "state"), Hostname: "httpbasic",
		Auth: "http_basic", Htpasswd: htpasswd, InspectorListen: inspAddr,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).URL

	c, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{IronicEndpoint: api + "/v1",
		IronicUser: "metal3", IronicUserPassword: "metal3-pw"})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = "1.78"
	n, err := nodes.Create(ctx, c, nodes.CreateOpts{Driver: "fake-hardware", Name: "basic-node"}).Extract()
	if err != nil {
		t.Fatalf("create node with http_basic: %v", err)
	}
	if got, err := nodes.Get(ctx, c, n.UUID).Extract(); err != nil || got.Name != "basic-node" {
		t.Fatalf("get node: %v %v", got, err)
	}
	anon, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: api + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Get(ctx, anon, n.UUID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("noauth client: %v, want 401", err)
	}

	ic, err := inspbasic.NewBareMetalIntrospectionHTTPBasic(inspbasic.EndpointOpts{IronicInspectorEndpoint: "http://" + inspAddr + "/v1",
		IronicInspectorUser: "metal3", IronicInspectorUserPassword: "metal3-pw"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pages, err := introspection.ListIntrospections(ic, nil).AllPages(ctx)
		if err == nil {
			if _, err := introspection.ExtractIntrospections(pages); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inspector with http_basic: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ianon, err := inspnoauth.NewBareMetalIntrospectionNoAuth(inspnoauth.EndpointOpts{IronicInspectorEndpoint: "http://" + inspAddr + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := introspection.ListIntrospections(ianon, nil).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("noauth inspector client: %v, want 401", err)
	}
}
