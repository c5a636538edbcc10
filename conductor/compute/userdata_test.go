package compute_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// rebuildKeyOpts is a rebuild with Nova's key_name (2.54) and user_data
// (2.57), which gophercloud's RebuildOpts lacks, through its builder
// interface.
type rebuildKeyOpts struct {
	servers.RebuildOpts
	keyName, userData any
}

func (o rebuildKeyOpts) ToServerRebuildMap() (map[string]any, error) {
	m, err := o.RebuildOpts.ToServerRebuildMap()
	if err != nil {
		return nil, err
	}
	r := m["rebuild"].(map[string]any)
	r["key_name"], r["user_data"] = o.keyName, o.userData
	return m, nil
}

// TestUserDataKept: with gophercloud on a conductor, a create's hostname
// (2.90) and user data are shown by the server's view
// (OS-EXT-SRV-ATTR:user_data, 2.3+) after the deploy; a rebuild sets the
// key and replaces the user data, and another unsets both.
func TestUserDataKept(t *testing.T) {
	l := startLab(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	cc.Microversion = "2.90"
	l.call("POST", "/compute/v2.1/os-keypairs", "2.2", map[string]any{"keypair": map[string]any{"name": "k1"}})
	srv, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "ud", FlavorRef: "gold", ImageRef: l.image, Networks: "none",
		Hostname: "ud-host", UserData: []byte("#cloud-config\n")}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	want := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	got, err := servers.Get(ctx, cc, srv.ID).Extract()
	if err != nil || got.Userdata == nil || *got.Userdata != want || got.Hostname == nil || *got.Hostname != "ud-host" || got.KeyName != "" {
		t.Fatalf("show after the deploy: %+v %v", got, err)
	}
	two := base64.StdEncoding.EncodeToString([]byte("two"))
	got, err = servers.Rebuild(ctx, cc, srv.ID, rebuildKeyOpts{servers.RebuildOpts{ImageRef: l.image}, "k1", two}).Extract()
	if err != nil || got.KeyName != "k1" || got.AdminPass == "" {
		t.Fatalf("rebuild with a key and user data: %+v %v", got, err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if got, err = servers.Get(ctx, cc, srv.ID).Extract(); err != nil || got.Userdata == nil || *got.Userdata != two || got.KeyName != "k1" {
		t.Fatalf("show after the rebuild: %+v %v", got, err)
	}
	if _, err = servers.Rebuild(ctx, cc, srv.ID, rebuildKeyOpts{servers.RebuildOpts{ImageRef: l.image}, nil, nil}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if got, err = servers.Get(ctx, cc, srv.ID).Extract(); err != nil || got.Userdata != nil || got.KeyName != "" {
		t.Fatalf("show after unsetting: %+v %v", got, err)
	}
}
