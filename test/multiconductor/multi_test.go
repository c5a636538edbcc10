// Package multiconductor runs two ferric conductors (service.Run) on one
// real etcd server (embedded, on loopback) and checks what several
// conductors promise: one view of the nodes from every API, work asked of
// either conductor, node locks that hold across them, and a dead
// conductor's nodes taken over by the live one.
package multiconductor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/test/harness"
)

// conductor is a conductor of the harness with this suite's calls.
type conductor struct{ *harness.Conductor }

func startConductor(t *testing.T, name, group, endpoint string) *conductor {
	return startConductorWith(t, name, endpoint, func(c *service.Config) { c.ConductorGroup = group })
}

// startConductorWith starts a conductor on the etcd at endpoint; mut
// changes its configuration.
func startConductorWith(t *testing.T, name, endpoint string, mut func(*service.Config)) *conductor {
	t.Helper()
	cfg := service.Config{Hostname: name, EtcdEndpoints: []string{endpoint}, EtcdPrefix: "/multi",
		HeartbeatInterval: 200 * time.Millisecond, HeartbeatTimeout: 2 * time.Second,
		InspectorListen: "", Log: harness.Logger("conductor", name)}
	mut(&cfg)
	return &conductor{harness.Start(t, cfg)}
}

func (c *conductor) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	code, _, out := c.callH(t, method, path, body)
	return code, out
}

// callH is call returning the response headers too.
func (c *conductor) callH(t *testing.T, method, path string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	code, hdr, raw := harness.API{Base: c.URL, Header: map[string]string{"X-OpenStack-Ironic-API-Version": "1.87"}}.Call(t, method, path, body)
	return code, hdr, harness.Object(raw)
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTwoConductorsShareNodes(t *testing.T) {
	srv := etcdtest.Start(t)
	a := startConductor(t, "conductor-a", "", srv.Endpoint)
	b := startConductor(t, "conductor-b", "", srv.Endpoint)
	rack := startConductor(t, "conductor-rack1", "rack1", srv.Endpoint)

	// Both conductors are registered and alive, seen from either API.
	eventually(t, "both conductors alive in GET /v1/conductors", func() bool {
		_, body := b.call(t, "GET", "/v1/conductors", nil)
		list, _ := body["conductors"].([]any)
		alive := 0
		for _, c := range list {
			if c.(map[string]any)["alive"] == true {
				alive++
			}
		}
		return alive == 3
	})

	// A node of conductor group rack1 is served by that group's conductor:
	// an action asked of another conductor's API is passed to it.
	code, n3 := a.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "n3", "conductor_group": "rack1"})
	if code != 201 {
		t.Fatalf("create n3: %d %v", code, n3)
	}
	eventually(t, "n3's conductor is conductor-rack1", func() bool {
		_, x := b.call(t, "GET", "/v1/nodes/n3", nil)
		return x["conductor"] == "conductor-rack1"
	})
	code, hdr, body := b.callH(t, "PUT", "/v1/nodes/n3/states/power", map[string]any{"target": "power on"})
	if code != 202 || hdr.Get("X-Ferric-Conductor") != "conductor-rack1" {
		t.Fatalf("power on n3 through b: %d, served by %q: %v", code, hdr.Get("X-Ferric-Conductor"), body)
	}
	eventually(t, "n3 powered on", func() bool {
		_, x := a.call(t, "GET", "/v1/nodes/n3", nil)
		return x["power_state"] == "power on"
	})
	// An image uploaded to one conductor's image store is found by the
	// conductor that deploys: rack1's validates a node using it.
	code, img := a.call(t, "POST", "/images/v2/images", map[string]any{"name": "os", "disk_format": "raw", "container_format": "bare"})
	if code != 201 {
		t.Fatalf("create image on a: %d %v", code, img)
	}
	put, _ := http.NewRequest("PUT", a.URL+"/images/v2/images/"+img["id"].(string)+"/file", strings.NewReader(strings.Repeat("x", 4096)))
	put.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != 204 {
		t.Fatalf("upload to a: %v %v", resp, err)
	}
	code, nimg := b.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "nimg", "conductor_group": "rack1",
		"deploy_interface": "direct", "instance_info": map[string]any{"image_source": img["id"]}})
	if code != 201 {
		t.Fatalf("create nimg: %d %v", code, nimg)
	}
	deployValid := func(c *conductor) (bool, string) {
		_, hdr, v := c.callH(t, "GET", "/v1/nodes/nimg/validate", nil)
		d, _ := v["deploy"].(map[string]any)
		return d["result"] == true, fmt.Sprint(d["reason"], " via ", hdr.Get("X-Ferric-Conductor"))
	}
	eventually(t, "the image on a validates for the node rack1 serves", func() bool {
		ok, why := deployValid(b)
		return ok && strings.HasSuffix(why, "via conductor-rack1")
	})
	if code, body := b.call(t, "PATCH", "/v1/nodes/nimg", []map[string]any{{"op": "replace", "path": "/instance_info/image_source", "value": "00000000-1111-2222-3333-444444444444"}}); code != 200 {
		t.Fatalf("patch nimg: %d %v", code, body)
	}
	eventually(t, "an image no conductor has fails validation", func() bool {
		ok, why := deployValid(b)
		return !ok && strings.Contains(why, "00000000-1111-2222-3333-444444444444")
	})

	// Its own conductor serves it without forwarding.
	if code, hdr, body := rack.callH(t, "PUT", "/v1/nodes/n3/states/power", map[string]any{"target": "power off"}); code != 202 || hdr.Get("X-Ferric-Conductor") != "" {
		t.Fatalf("power off n3 through its conductor: %d, forwarded to %q: %v", code, hdr.Get("X-Ferric-Conductor"), body)
	}

	// A node created through one API is served by the other, and both name
	// the same conductor for it.
	code, n1 := a.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "n1"})
	if code != 201 {
		t.Fatalf("create through a: %d %v", code, n1)
	}
	var fromB map[string]any
	eventually(t, "b serves n1", func() bool {
		code, fromB = b.call(t, "GET", "/v1/nodes/n1", nil)
		return code == 200
	})
	if fromB["uuid"] != n1["uuid"] {
		t.Fatalf("b's n1 is %v, a created %v", fromB["uuid"], n1["uuid"])
	}
	eventually(t, "both APIs name the same conductor of n1", func() bool {
		_, x := a.call(t, "GET", "/v1/nodes/n1", nil)
		_, y := b.call(t, "GET", "/v1/nodes/n1", nil)
		return x["conductor"] == y["conductor"] && (x["conductor"] == "conductor-a" || x["conductor"] == "conductor-b")
	})

	// Work asked of b changes the node a serves.
	if code, body := b.call(t, "PUT", "/v1/nodes/n1/states/provision", map[string]any{"target": "manage"}); code != 202 {
		t.Fatalf("manage through b: %d %v", code, body)
	}
	eventually(t, "a sees n1 manageable", func() bool {
		_, x := a.call(t, "GET", "/v1/nodes/n1", nil)
		return x["provision_state"] == "manageable"
	})

	// Concurrent patches through both APIs: none is lost.
	var wg sync.WaitGroup
	for i := range 10 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := c.call(t, "PATCH", "/v1/nodes/n1", []map[string]any{{"op": "add", "path": fmt.Sprintf("/extra/k%d", i), "value": i}})
			if code != 200 {
				t.Errorf("patch %d: %d %v", i, code, body)
			}
		}()
	}
	wg.Wait()
	for _, c := range []*conductor{a, b} {
		eventually(t, "every patch in the node", func() bool {
			_, x := c.call(t, "GET", "/v1/nodes/n1", nil)
			extra, _ := x["extra"].(map[string]any)
			return len(extra) == 10
		})
	}

	// A node a is deploying: its lock holds against b's API; when a dies,
	// b takes the node over (lock released, deploy failed with a reason).
	code, n2 := a.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "n2"})
	if code != 201 {
		t.Fatalf("create n2: %d %v", code, n2)
	}
	direct, err := store.OpenEtcd(context.Background(), store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/multi"})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	plant := func(state, target string) {
		t.Helper()
		if err := direct.Update(context.Background(), func(tx store.Tx) error {
			n, err := tx.Node("n2")
			if err != nil {
				return err
			}
			host := "conductor-a"
			n.Reservation, n.ProvisionState, n.TargetProvisionState = &host, state, &target
			if target == "" {
				n.TargetProvisionState = nil
			}
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	plant("enroll", "")
	eventually(t, "b refuses to change n2 while a holds its lock", func() bool {
		code, body := b.call(t, "PATCH", "/v1/nodes/n2", []map[string]any{{"op": "add", "path": "/extra/x", "value": 1}})
		return code == 409 && strings.Contains(fmt.Sprint(body), "is locked by host conductor-a")
	})
	plant("deploying", "active")
	a.Stop()
	eventually(t, "b takes n2 over from the dead conductor a", func() bool {
		_, x := b.call(t, "GET", "/v1/nodes/n2", nil)
		return x["provision_state"] == "deploy failed" && x["reservation"] == nil &&
			strings.Contains(fmt.Sprint(x["last_error"]), "took over node")
	})
	eventually(t, "b is the conductor of n1 once a is dead", func() bool {
		_, x := b.call(t, "GET", "/v1/nodes/n1", nil)
		return x["conductor"] == "conductor-b"
	})
}
