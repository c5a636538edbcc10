package compute_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/configdrive"
	"github.com/ferric-metal/ferric/test/harness"
)

// offline runs fn on the state directory's store while no conductor
// runs.
func offline(t *testing.T, dir string, fn func(tx store.Tx) error) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(dir, "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestCreateSurvivesRestart restarts the conductor between a server's
// create and its deploy: the create's admin password, injected file and
// user data were stored with the server, so the restarted conductor
// allocates and deploys it, with a config drive holding them.
//
// The window is made certain: the only node is locked by another live
// conductor (written into the store while no conductor runs), so the
// allocation waits for the lock; the conductor stops while it waits.
func TestCreateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := service.Config{StateDir: dir, Hostname: "c1", Log: harness.Logger()}
	c := harness.Start(t, cfg)
	l := &lab{t: t, url: c.URL}
	l.setup(1)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var nodeUUID string
	offline(t, dir, func(tx store.Tx) error {
		if err := tx.PutConductor(&store.Conductor{Hostname: "ghost", HeartbeatAt: time.Now().UTC()}); err != nil {
			return err
		}
		n, err := tx.Node("bm0")
		if err != nil {
			return err
		}
		nodeUUID = n.UUID
		ghost := "ghost"
		n.Reservation = &ghost
		return tx.PutNode(n)
	})

	c = harness.Start(t, cfg)
	l.url = c.URL
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const pass = "restart-Pass-42"
	srv, err := servers.Create(ctx, l.client(), servers.CreateOpts{Name: "r1", FlavorRef: "gold", ImageRef: l.image,
		AdminPass: pass, UserData: []byte("#!/bin/sh\necho user-data-marker\n"),
		Personality: servers.Personality{{Path: "/etc/motd", Contents: []byte("injected-file-marker")}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if srv.AdminPass != pass {
		t.Fatalf("create answered adminPass %q, want %q", srv.AdminPass, pass)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// Between create and deploy: the allocation waits, the node is
	// untouched, the build request is stored.
	offline(t, dir, func(tx store.Tx) error {
		a, err := tx.Allocation(srv.ID)
		if err != nil {
			return err
		}
		n, err := tx.Node(nodeUUID)
		if err != nil {
			return err
		}
		if a.State != "allocating" || n.ProvisionState != "available" {
			t.Fatalf("after the stop: allocation %s, node %s; want allocating, available", a.State, n.ProvisionState)
		}
		r, err := tx.Record("compute-builds", srv.ID)
		if err != nil {
			t.Fatalf("no stored build request for %s: %v", srv.ID, err)
		}
		if !bytes.Contains(r.Data, []byte(pass)) {
			t.Fatalf("stored build request %s lacks the admin password", r.Data)
		}
		// The other conductor goes away and releases its lock.
		n.Reservation = nil
		if err := tx.PutNode(n); err != nil {
			return err
		}
		return tx.DeleteConductor("ghost")
	})

	c = harness.Start(t, cfg)
	l.url = c.URL
	if err := servers.WaitForStatus(ctx, l.client(), srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	got, err := servers.Get(ctx, l.client(), srv.ID).Extract()
	if err != nil || got.AdminPass != "" || got.Name != "r1" {
		t.Fatalf("show after restart: %+v %v", got, err)
	}
	node := l.do("GET", "/v1/nodes/"+nodeUUID, nil, 200)
	if ii, _ := node["instance_info"].(map[string]any); ii["configdrive"] != "******" {
		t.Fatalf("node's instance_info.configdrive = %v, want it masked", ii["configdrive"])
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	offline(t, dir, func(tx store.Tx) error {
		if _, err := tx.Record("compute-builds", srv.ID); err == nil {
			t.Errorf("the build request of %s is still stored after its deploy started", srv.ID)
		}
		n, err := tx.Node(nodeUUID)
		if err != nil {
			return err
		}
		enc, _ := n.InstanceInfo["configdrive"].(string)
		iso, err := configdrive.Decode(enc)
		if err != nil {
			t.Fatalf("node's config drive: %v", err)
		}
		for _, want := range []string{pass, "injected-file-marker", "user-data-marker"} {
			if !bytes.Contains(iso, []byte(want)) && !bytes.Contains(iso, []byte(base64.StdEncoding.EncodeToString([]byte(want)))) {
				t.Errorf("the deployed config drive lacks %q", want)
			}
		}
		return nil
	})
}
