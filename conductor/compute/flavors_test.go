package compute_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ferric-metal/ferric/conductor/compute"
	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestFlavorMapping: a configured flavor asks for its resource class and
// required traits; a node without the trait is no valid host, one with
// it is deployed.
func TestFlavorMapping(t *testing.T) {
	file := filepath.Join(t.TempDir(), "flavors.json")
	os.WriteFile(file, []byte(`[{"id":"gpu.large","resource_class":"gold","traits":["CUSTOM_GPU"],"vcpus":32,"ram":131072,"disk":480,"extra_specs":{"hw:cpu_policy":"dedicated"}}]`), 0o644)
	fl, err := compute.LoadFlavors(file)
	if err != nil {
		t.Fatal(err)
	}
	c := harness.Start(t, service.Config{ComputeFlavors: fl})
	l := &lab{t: t, url: c.URL}
	l.setup(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	f, err := flavors.Get(ctx, cc, "gpu.large").Extract()
	if err != nil || f.VCPUs != 32 || f.RAM != 131072 || f.Disk != 480 {
		t.Fatalf("flavor %+v %v", f, err)
	}
	specs, err := flavors.ListExtraSpecs(ctx, cc, "gpu.large").Extract()
	if err != nil || specs["trait:CUSTOM_GPU"] != "required" || specs["resources:CUSTOM_GOLD"] != "1" || specs["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("extra specs %v %v", specs, err)
	}
	s1, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "a", FlavorRef: "gpu.large", ImageRef: l.image}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, s1.ID, "ERROR"); err != nil {
		t.Fatalf("server on a node without the trait: %v, want ERROR", err)
	}
	l.do("PUT", "/v1/nodes/bm0/traits/CUSTOM_GPU", nil, 204)
	s2, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "b", FlavorRef: "gpu.large", ImageRef: l.image}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, s2.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
}
