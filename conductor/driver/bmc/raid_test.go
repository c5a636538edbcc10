package bmc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

const gib = int64(1) << 30

// RAID volumes through the emulator's Storage: drives listed, volumes
// created (sized and MAX), refused with the BMC's message, deleted.
func TestRedfishRAID(t *testing.T) {
	ctx := context.Background()
	disks := []redfish.Disk{{Size: 10 * gib}, {Size: 10 * gib}, {Size: 10 * gib, HDD: true}}
	e := startEmulatorHW(t, false, map[string]redfish.Hardware{"1": {Disks: disks}, "2": {Disks: disks, RAIDTypes: []string{}}}, "1", "2")
	n := e.node(map[string]any{KeyRedfishSystemID: "/redfish/v1/Systems/1"})
	d := NewRedfish(testConfig())
	inv, err := d.RAIDInventory(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	wantDisks := []driver.PhysicalDisk{
		{ID: "0", Controller: "1", Name: "sda", MediaType: "SSD", Protocol: "SATA", SizeBytes: 10 * gib, Ref: "/redfish/v1/Systems/1/Storage/1/Drives/0"},
		{ID: "1", Controller: "1", Name: "sdb", MediaType: "SSD", Protocol: "SATA", SizeBytes: 10 * gib, Ref: "/redfish/v1/Systems/1/Storage/1/Drives/1"},
		{ID: "2", Controller: "1", Name: "sdc", MediaType: "HDD", Protocol: "SATA", SizeBytes: 10 * gib, Ref: "/redfish/v1/Systems/1/Storage/1/Drives/2"},
	}
	if diff := cmp.Diff(wantDisks, inv.Disks); diff != "" {
		t.Errorf("RAIDInventory disks (-want +got):\n%s", diff)
	}
	if len(inv.Volumes) != 0 || !cmp.Equal(inv.Controllers, map[string][]string{"1": {"RAID0", "RAID1", "RAID5", "RAID10"}}) {
		t.Errorf("RAIDInventory = %+v", inv)
	}
	v, err := d.CreateVolume(ctx, n, driver.VolumeSpec{Controller: "1", Drives: []string{"0", "1"}, RAIDType: "RAID1", SizeBytes: 5 * gib, Name: "root"})
	if err != nil {
		t.Fatal(err)
	}
	want := driver.LogicalDisk{ID: "1", Name: "root", Controller: "1", RAIDType: "RAID1", SizeBytes: 5 * gib, Ref: "/redfish/v1/Systems/1/Storage/1/Volumes/1"}
	if v != want {
		t.Errorf("CreateVolume = %+v, want %+v", v, want)
	}
	_, err = d.CreateVolume(ctx, n, driver.VolumeSpec{Controller: "1", Drives: []string{"1", "2"}, RAIDType: "RAID0"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400: The drive /redfish/v1/Systems/1/Storage/1/Drives/1 is a member of volume 1") {
		t.Errorf("CreateVolume on a used drive: %v, want the BMC's message", err)
	}
	max, err := d.CreateVolume(ctx, n, driver.VolumeSpec{Controller: "1", Drives: []string{"2"}, RAIDType: "RAID0"})
	if err != nil || max.SizeBytes != 10*gib {
		t.Errorf("CreateVolume MAX = %+v, %v; want the whole drive", max, err)
	}
	inv, _ = d.RAIDInventory(ctx, n)
	if len(inv.Volumes) != 2 {
		t.Fatalf("volumes after two creates: %+v", inv.Volumes)
	}
	for _, v := range inv.Volumes {
		if err := d.DeleteVolume(ctx, n, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.srv.Volumes("1"); len(got) != 0 {
		t.Errorf("volumes left after deleting all: %+v", got)
	}
	// A controller without RAID types offers no drives for RAID.
	hba := e.node(map[string]any{KeyRedfishSystemID: "/redfish/v1/Systems/2"})
	if inv, err := d.RAIDInventory(ctx, hba); err != nil || len(inv.Disks) != 0 {
		t.Errorf("RAIDInventory of an HBA = %+v, %v; want no drives", inv, err)
	}
}

// Event subscriptions through the redfish vendor methods.
func TestRedfishSubscriptions(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t, false, "1")
	n := e.node(nil)
	d := NewRedfish(testConfig())
	bad := []struct {
		name, method string
		args         map[string]any
		want         string
	}{
		{"no destination", "create_subscription", map[string]any{}, "Destination None is not a valid URI"},
		{"relative destination", "create_subscription", map[string]any{"Destination": "/x"}, "Destination '/x' is not a valid URI"},
		{"context not a string", "create_subscription", map[string]any{"Destination": "http://x/", "Context": 3.0}, "Context 3 is not a valid string"},
		{"protocol not a string", "create_subscription", map[string]any{"Destination": "http://x/", "Protocol": true}, "Protocol True is not a string"},
		{"headers not a list", "create_subscription", map[string]any{"Destination": "http://x/", "HttpHeaders": "a"}, "HttpHeaders 'a' is not a list of headers"},
		{"event types not a list", "create_subscription", map[string]any{"Destination": "http://x/", "EventTypes": "Alert"}, "EventTypes 'Alert' is not a valid value"},
		{"delete without id", "delete_subscription", map[string]any{}, "id can't be None"},
		{"unknown method", "explode", map[string]any{}, "no vendor method explode"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.ValidateCall(n, tc.method, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ValidateCall(%s, %v) = %v, want %q", tc.method, tc.args, err, tc.want)
			}
		})
	}
	_, err := d.Call(ctx, n, "create_subscription", map[string]any{"Destination": "http://x/", "EventTypes": []any{"Everything"}})
	if err == nil || !strings.Contains(err.Error(), "EventTypes ['Everything'] is not a valid value, allowed values ['StatusChange'") {
		t.Errorf("unknown event type: %v", err)
	}
	got, err := d.Call(ctx, n, "create_subscription", map[string]any{"Destination": "https://hooks.example.com/bmh", "Context": "metal3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"Id": "1", "Destination": "https://hooks.example.com/bmh", "Context": "metal3", "Protocol": "Redfish", "EventTypes": []any{"Alert"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("create_subscription (-want +got):\n%s", diff)
	}
	if _, err := d.Call(ctx, n, "create_subscription", map[string]any{"Destination": "http://10.0.0.2/"}); err != nil {
		t.Fatal(err)
	}
	one, err := d.Call(ctx, n, "get_subscription", map[string]any{"id": "1"})
	if diff := cmp.Diff(want, one); err != nil || diff != "" {
		t.Errorf("get_subscription: %v (-want +got):\n%s", err, diff)
	}
	all, err := d.Call(ctx, n, "get_all_subscriptions", nil)
	if err != nil || all.(map[string]any)["Members@odata.count"] != float64(2) {
		t.Errorf("get_all_subscriptions = %v, %v", all, err)
	}
	if _, err := d.Call(ctx, n, "delete_subscription", map[string]any{"id": "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(ctx, n, "delete_subscription", map[string]any{"id": "1"}); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("delete of a deleted subscription: %v, want ErrNotFound", err)
	}
	if s := e.srv.Subscriptions(); len(s) != 1 || s[0].ID != "2" || s[0].Context != "" {
		t.Errorf("subscriptions left = %+v, want #2 with Context \"\"", s)
	}
}
