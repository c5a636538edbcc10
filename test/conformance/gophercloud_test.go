package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/conductors"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func gopherClient(t *testing.T) *gophercloud.ServiceClient {
	t.Helper()
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: baseURL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = "1.78"
	return c
}

func waitGopherNode(t *testing.T, c *gophercloud.ServiceClient, id string, ok func(*nodes.Node) bool) *nodes.Node {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := nodes.Get(ctx, c, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: timeout in state %s/%s power %s", id, n.ProvisionState, n.TargetProvisionState, n.PowerState)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func gopherProvision(t *testing.T, c *gophercloud.ServiceClient, id string, target nodes.TargetProvisionState, want nodes.ProvisionState) {
	t.Helper()
	err := nodes.ChangeProvisionState(context.Background(), c, id, nodes.ProvisionStateOpts{Target: target}).ExtractErr()
	if err != nil {
		t.Fatalf("provision %s: %v", target, err)
	}
	waitGopherNode(t, c, id, func(n *nodes.Node) bool {
		return n.ProvisionState == string(want) && n.TargetProvisionState == "" && n.Reservation == ""
	})
}

func TestGophercloud(t *testing.T) {
	ctx := context.Background()
	c := gopherClient(t)
	rc := fmt.Sprintf("gopher-%d", time.Now().UnixNano())

	// create more nodes than one page holds
	var ids []string
	for i := range 7 {
		n, err := nodes.Create(ctx, c, nodes.CreateOpts{Driver: "fake-hardware", Name: fmt.Sprintf("%s-%d", rc, i),
			ResourceClass: rc, Properties: map[string]any{"cpus": 2},
			DriverInfo: map[string]any{"ipmi_password": "gopher-secret"}}).Extract()
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if n.ProvisionState != "enroll" || n.DriverInfo["ipmi_password"] != "******" {
			t.Errorf("created node: %s %v", n.ProvisionState, n.DriverInfo)
		}
		ids = append(ids, n.UUID)
	}
	// paginated listing: gophercloud follows nodes_links
	pages, seen := 0, []string{}
	err := nodes.ListDetail(c, nodes.ListOpts{Limit: 3, ResourceClass: rc}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ns, err := nodes.ExtractNodes(p)
		if err != nil {
			return false, err
		}
		pages++
		for _, n := range ns {
			seen = append(seen, n.UUID)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages < 3 || fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Errorf("pagination: %d pages, %v, want %v", pages, seen, ids)
	}
	all, err := nodes.List(c, nodes.ListOpts{ResourceClass: rc, Limit: 2}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ns, _ := nodes.ExtractNodes(all); len(ns) != 7 {
		t.Errorf("AllPages: %d nodes", len(ns))
	}

	id := ids[0]
	n, err := nodes.Get(ctx, c, rc+"-0").Extract()
	if err != nil || n.UUID != id {
		t.Fatalf("get by name: %v %v", n, err)
	}
	n, err = nodes.Update(ctx, c, id, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/properties/memory_mb", Value: 4096},
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/description", Value: "from gophercloud"},
	}).Extract()
	if err != nil || n.Properties["memory_mb"] != float64(4096) || n.Description != "from gophercloud" {
		t.Fatalf("update: %v %v", n, err)
	}
	_, err = nodes.Update(ctx, c, id, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/uuid", Value: "x"}}).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("read-only patch: %v", err)
	}
	if v, err := nodes.Validate(ctx, c, id).Extract(); err != nil || !v.Power.Result {
		t.Errorf("validate: %+v %v", v, err)
	}

	// ports
	p, err := ports.Create(ctx, c, ports.CreateOpts{NodeUUID: id, Address: "52:54:00:be:ef:01"}).Extract()
	if err != nil {
		t.Fatalf("port create: %v", err)
	}
	pl, err := ports.List(c, ports.ListOpts{Address: "52:54:00:be:ef:01"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := ports.ExtractPorts(pl); len(ps) != 1 || ps[0].UUID != p.UUID {
		t.Errorf("port list: %v", ps)
	}
	if _, err := ports.Get(ctx, c, p.UUID).Extract(); err != nil {
		t.Errorf("port get: %v", err)
	}

	// power and provisioning
	if err := nodes.ChangePowerState(ctx, c, id, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr(); err != nil {
		t.Fatalf("power on: %v", err)
	}
	waitGopherNode(t, c, id, func(n *nodes.Node) bool { return n.PowerState == "power on" && n.Reservation == "" })
	err = nodes.ChangePowerState(ctx, c, id, nodes.PowerStateOpts{Target: "sideways"}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("bad power target: %v", err)
	}
	gopherProvision(t, c, id, nodes.TargetManage, nodes.Manageable)
	gopherProvision(t, c, id, nodes.TargetProvide, nodes.Available)

	// allocation picks the only available node of the class
	a, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: rc, Name: rc + "-alloc"}).Extract()
	if err != nil {
		t.Fatalf("allocation: %v", err)
	}
	for i := 0; a.State == "allocating" && i < 200; i++ {
		time.Sleep(50 * time.Millisecond)
		if a, err = allocations.Get(ctx, c, a.UUID).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	if a.State != "active" || a.NodeUUID != id {
		t.Errorf("allocation: %+v", a)
	}
	al, _ := allocations.List(c, allocations.ListOpts{ResourceClass: rc}).AllPages(ctx)
	if as, _ := allocations.ExtractAllocations(al); len(as) != 1 {
		t.Errorf("allocation list: %v", as)
	}

	gopherProvision(t, c, id, nodes.TargetActive, nodes.Active)
	if err := nodes.Delete(ctx, c, id).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Errorf("delete active: %v", err)
	}
	gopherProvision(t, c, id, nodes.TargetDeleted, nodes.Available)
	// Undeploy removes the node's allocation (as Ironic does).
	if _, err := allocations.Get(ctx, c, a.UUID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("allocation after undeploy: %v", err)
	}
	if err := ports.Delete(ctx, c, p.UUID).ExtractErr(); err != nil {
		t.Errorf("port delete: %v", err)
	}
	for _, id := range ids {
		if err := nodes.Delete(ctx, c, id).ExtractErr(); err != nil {
			t.Errorf("delete %s: %v", id, err)
		}
	}
	if _, err := nodes.Get(ctx, c, id).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("get deleted: %v", err)
	}

	// drivers and conductors
	dp, err := drivers.ListDrivers(c, drivers.ListDriversOpts{Detail: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := drivers.ExtractDrivers(dp)
	if err != nil || len(ds) == 0 {
		t.Fatalf("drivers: %v %v", ds, err)
	}
	d, err := drivers.GetDriverDetails(ctx, c, "fake-hardware").Extract()
	if err != nil || d.Name != "fake-hardware" || len(d.Hosts) != 1 {
		t.Errorf("driver: %+v %v", d, err)
	}
	if _, err := drivers.GetDriverProperties(ctx, c, "ipmi").Extract(); err != nil {
		t.Errorf("driver properties: %v", err)
	}
	cp, err := conductors.List(c, conductors.ListOpts{Detail: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := conductors.ExtractConductors(cp)
	if err != nil || len(cs) != 1 || cs[0].Hostname != "conformance" || !cs[0].Alive {
		t.Errorf("conductors: %+v %v", cs, err)
	}
	if cd, err := conductors.Get(ctx, c, "conformance").Extract(); err != nil || cd.Hostname != "conformance" {
		t.Errorf("conductor get: %+v %v", cd, err)
	}
}
