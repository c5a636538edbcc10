package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// fakeNeutron serves the few Neutron v2.0 routes the interface calls,
// from fixed ports and networks, and records port updates.
type fakeNeutron struct {
	mu       sync.Mutex
	ports    map[string]map[string]any
	networks map[string]map[string]any
	updates  []map[string]any
}

func (f *fakeNeutron) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/v2.0/")
	kind, id, _ := strings.Cut(path, "/")
	var table map[string]map[string]any
	switch kind {
	case "ports":
		table = f.ports
	case "networks":
		table = f.networks
	}
	obj, ok := table[id]
	switch {
	case r.Method == http.MethodGet && id == "" && kind == "networks":
		list := []any{}
		for _, n := range f.networks {
			if n["name"] == r.URL.Query().Get("name") {
				list = append(list, n)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"networks": list})
	case !ok:
		http.Error(w, `{"NeutronError": {"type": "NotFound"}}`, http.StatusNotFound)
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{strings.TrimSuffix(kind, "s"): obj})
	case r.Method == http.MethodPut:
		var body struct {
			Port map[string]any `json:"port"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.updates = append(f.updates, body.Port)
		for k, v := range body.Port {
			obj[k] = v
		}
		obj["binding:vif_type"] = "binding_failed"
		_ = json.NewEncoder(w).Encode(map[string]any{"port": obj})
	}
}

func newFake(t *testing.T) (*fakeNeutron, *Network) {
	f := &fakeNeutron{
		ports: map[string]map[string]any{
			"p-flat":  {"id": "p-flat", "network_id": "n-flat", "mac_address": "fa:16:3e:00:00:01", "binding:host_id": ""},
			"p-multi": {"id": "p-multi", "network_id": "n-multi", "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "other-host"},
		},
		networks: map[string]map[string]any{
			"n-flat":  {"id": "n-flat", "name": "prov", "provider:physical_network": "physnet1"},
			"n-multi": {"id": "n-multi", "name": "multi", "segments": []any{map[string]any{"provider:physical_network": "physnet2"}, map[string]any{"provider:physical_network": "physnet3"}, map[string]any{"provider:physical_network": nil}}},
		},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, New(Config{Client: NoAuthClient(srv.URL), ProvisioningNetwork: "prov"})
}

func TestVIFPhysnets(t *testing.T) {
	_, nw := newFake(t)
	for _, tc := range []struct {
		vif, want, wantErr string
		code               int
	}{
		{vif: "p-flat", want: "[physnet1]"},
		{vif: "p-multi", want: "[physnet2 physnet3]"},
		{vif: "nope", wantErr: "Neutron port nope was not found", code: 400},
	} {
		got, err := nw.VIFPhysnets(context.Background(), tc.vif)
		var ie *ironichttp.Error
		switch {
		case tc.wantErr != "":
			if !errors.As(err, &ie) || ie.Code != tc.code || ie.Msg != tc.wantErr {
				t.Errorf("VIFPhysnets(%s) = %v, want %d %q", tc.vif, err, tc.code, tc.wantErr)
			}
		case err != nil || jsonOf(got) != jsonOf(strings.Fields(strings.Trim(tc.want, "[]"))):
			t.Errorf("VIFPhysnets(%s) = %v, %v, want %s", tc.vif, got, err, tc.want)
		}
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestAttachSeedsThenBinds: an inactive node's VIF gets its host only
// (a port bound elsewhere unbound first); an active node's is bound with
// the local link, the physical network and the MAC.
func TestAttachSeedsThenBinds(t *testing.T) {
	f, nw := newFake(t)
	n := &driver.Node{UUID: "node-1", DriverInfo: map[string]any{}}
	p := driver.NetPort{UUID: "port-1", Address: "52:54:00:00:00:01", PhysicalNetwork: "physnet2",
		LocalLinkConnection: map[string]any{"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1"}}
	ctx := context.Background()
	if err := nw.VIFAttached(ctx, n, p, "p-multi", false); err != nil {
		t.Fatal(err)
	}
	got := jsonOf(f.updates)
	want := `[{"binding:host_id":"","binding:profile":{}},{"mac_address":"52:54:00:00:00:01"},{"binding:host_id":"other-host","binding:profile":null},` +
		`{"binding:host_id":"","binding:profile":{}},{"binding:host_id":"node-1","binding:profile":{},"binding:vnic_type":"baremetal"}]`
	if got != want {
		t.Errorf("updates on attach (inactive):\n got %s\nwant %s", got, want)
	}
	f.updates = nil
	p.InternalInfo = map[string]any{driver.TenantVIFKey: "p-multi"}
	if err := nw.ConfigureTenantNetworks(ctx, n, []driver.NetPort{p}); err != nil {
		t.Fatal(err)
	}
	want = `[{"binding:host_id":"node-1","binding:profile":{"local_link_information":[{"port_id":"Eth1","switch_id":"aa:bb:cc:dd:ee:ff"}],"physical_network":"physnet2"},"binding:vnic_type":"baremetal","mac_address":"52:54:00:00:00:01"}]`
	if got := jsonOf(f.updates); got != want {
		t.Errorf("updates on bind:\n got %s\nwant %s", got, want)
	}
	// A failed binding fails only when the node asks for it.
	n.DriverInfo["fail_on_binding_failure"] = true
	if err := nw.ConfigureTenantNetworks(ctx, n, []driver.NetPort{p}); err == nil || !strings.Contains(err.Error(), "failed to reach status ACTIVE") {
		t.Errorf("bind with fail_on_binding_failure = %v, want an error", err)
	}
	// No VIF on any port: Ironic's error.
	p.InternalInfo = nil
	if err := nw.ConfigureTenantNetworks(ctx, n, []driver.NetPort{p}); err == nil || err.Error() != "No neutron ports or portgroups are associated with node node-1" {
		t.Errorf("bind without VIFs = %v", err)
	}
}

func TestValidateNetworks(t *testing.T) {
	_, nw := newFake(t)
	ctx := context.Background()
	n := &driver.Node{UUID: "node-1", DriverInfo: map[string]any{}}
	if err := nw.ValidateNetworks(ctx, n); err == nil || err.Error() != "UUID or name of cleaning network is not set in configuration" {
		t.Errorf("no cleaning network: %v", err)
	}
	n.DriverInfo["cleaning_network"] = "n-multi"
	if err := nw.ValidateNetworks(ctx, n); err != nil {
		t.Errorf("networks by UUID and by name: %v", err)
	}
	n.DriverInfo["provisioning_network"] = "missing"
	if err := nw.ValidateNetworks(ctx, n); err == nil || err.Error() != "provisioning network with name or UUID missing was not found" {
		t.Errorf("unknown network: %v", err)
	}
}

// TestRescueAndInspectionNetworks: the rescuing network is required for
// a rescue (Ironic's messages), from driver_info or the configuration;
// the inspection network is optional.
func TestRescueAndInspectionNetworks(t *testing.T) {
	_, nw := newFake(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		cfg        string
		driverInfo map[string]any
		want       string
		inspection bool
	}{
		{name: "none", want: "UUID or name of rescuing network is not set in configuration"},
		{name: "configured by name", cfg: "prov"},
		{name: "configured, unknown", cfg: "nowhere", want: "rescuing network with name or UUID nowhere was not found"},
		{name: "driver_info wins", cfg: "nowhere", driverInfo: map[string]any{"rescuing_network": "n-multi"}},
		{name: "inspection from driver_info", driverInfo: map[string]any{"inspection_network": "prov"}, inspection: true,
			want: "UUID or name of rescuing network is not set in configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw.cfg.RescuingNetwork = tc.cfg
			n := &driver.Node{UUID: "node-1", DriverInfo: tc.driverInfo}
			err := nw.ValidateRescueNetwork(ctx, n)
			var ie *ironichttp.Error
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ValidateRescueNetwork = %v, want nil", err)
			case tc.want != "" && (!errors.As(err, &ie) || ie.Code != http.StatusBadRequest || ie.Msg != tc.want):
				t.Errorf("ValidateRescueNetwork = %v, want 400 %q", err, tc.want)
			}
			if got := nw.HasInspectionNetwork(n); got != tc.inspection {
				t.Errorf("HasInspectionNetwork = %v, want %v", got, tc.inspection)
			}
		})
	}
	nw.cfg.InspectionNetwork = "prov"
	if !nw.HasInspectionNetwork(&driver.Node{}) {
		t.Errorf("HasInspectionNetwork with a configured network = false")
	}
}
