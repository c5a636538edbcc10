package raid

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/driver"
)

func cfg(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, cfg, want string }{
		{"root raid1 and data MAX", `{"logical_disks":[{"raid_level":"1","size_gb":100,"is_root_volume":true},{"raid_level":"5","size_gb":"MAX","controller":"1","physical_disks":["2","3","4"]}]}`, ""},
		{"every property", `{"logical_disks":[{"raid_level":"1+0","size_gb":0,"volume_name":"v","is_root_volume":false,"share_physical_disks":true,"disk_type":"ssd","interface_type":"sas","number_of_physical_disks":4,"controller":"RAID.1"}]}`, ""},
		{"no logical_disks", `{}`, "RAID config validation error: 'logical_disks' is a required property"},
		{"empty list", `{"logical_disks":[]}`, "RAID config validation error: [] should be non-empty"},
		{"unknown top-level key", `{"logical_disks":[{"raid_level":"1","size_gb":1}],"x":1}`, "RAID config validation error: Additional properties are not allowed ('x' was unexpected)"},
		{"unknown level", `{"logical_disks":[{"raid_level":"7","size_gb":1}]}`, "RAID config validation error: '7' is not one of ['JBOD', '0', '1', '2', '5', '6', '1+0', '5+0', '6+0']"},
		{"level as a number", `{"logical_disks":[{"raid_level":1,"size_gb":1}]}`, "RAID config validation error: 1 is not of type 'string'"},
		{"size as text", `{"logical_disks":[{"raid_level":"1","size_gb":"big"}]}`, "RAID config validation error: 'big' is not valid under any of the given schemas"},
		{"negative size", `{"logical_disks":[{"raid_level":"1","size_gb":-1}]}`, "RAID config validation error: -1 is not valid under any of the given schemas"},
		{"no size", `{"logical_disks":[{"raid_level":"1"}]}`, "RAID config validation error: 'size_gb' is a required property"},
		{"root not a boolean", `{"logical_disks":[{"raid_level":"1","size_gb":1,"is_root_volume":"yes"}]}`, "RAID config validation error: 'yes' is not of type 'boolean'"},
		{"disks without controller", `{"logical_disks":[{"raid_level":"1","size_gb":1,"physical_disks":["0","1"]}]}`, "RAID config validation error: 'controller' is a dependency of 'physical_disks'"},
		{"zero disks", `{"logical_disks":[{"raid_level":"1","size_gb":1,"number_of_physical_disks":0}]}`, "RAID config validation error: 0 is less than or equal to the minimum of 0"},
		{"bad disk type", `{"logical_disks":[{"raid_level":"1","size_gb":1,"disk_type":"nvme"}]}`, "RAID config validation error: 'nvme' is not one of ['hdd', 'ssd']"},
		{"two roots", `{"logical_disks":[{"raid_level":"1","size_gb":1,"is_root_volume":true},{"raid_level":"0","size_gb":1,"is_root_volume":true}]}`, "Raid config cannot have more than one root volume. 2 root volumes were specified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(cfg(t, tc.cfg))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate(%s) = %q, want %q", tc.cfg, got, tc.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	disk := func(id string, size int64) driver.PhysicalDisk {
		return driver.PhysicalDisk{ID: id, Controller: "1", MediaType: "SSD", Protocol: "SATA", SizeBytes: size}
	}
	four := []driver.PhysicalDisk{disk("0", 10*gib), disk("1", 10*gib), disk("2", 10*gib), disk("3", 10*gib)}
	tests := []struct {
		name, cfg string
		phys      []driver.PhysicalDisk
		want      []Volume
		wantErr   string
	}{
		{"raid1 of 5 GiB on the first two", `{"logical_disks":[{"raid_level":"1","size_gb":5,"is_root_volume":true}]}`, four,
			[]Volume{{SizeBytes: 5 * gib, Disks: []string{"0", "1"}, Controller: "1", RAIDType: "RAID1"}}, ""},
		{"raid1 root and raid1 data", `{"logical_disks":[{"raid_level":"1","size_gb":5},{"raid_level":"1","size_gb":8}]}`, four,
			[]Volume{{SizeBytes: 5 * gib, Disks: []string{"0", "1"}, Controller: "1", RAIDType: "RAID1"}, {SizeBytes: 8 * gib, Disks: []string{"2", "3"}, Controller: "1", RAIDType: "RAID1"}}, ""},
		{"raid5 on three, MAX on named disks", `{"logical_disks":[{"raid_level":"5","size_gb":"MAX","controller":"1","physical_disks":["1","2","3"]}]}`, four,
			[]Volume{{Disks: []string{"1", "2", "3"}, Controller: "1", RAIDType: "RAID5"}}, ""},
		{"raid10 on four", `{"logical_disks":[{"raid_level":"1+0","size_gb":16}]}`, four,
			[]Volume{{SizeBytes: 16 * gib, Disks: []string{"0", "1", "2", "3"}, Controller: "1", RAIDType: "RAID10"}}, ""},
		{"raid0 on a number of disks", `{"logical_disks":[{"raid_level":"0","size_gb":25,"number_of_physical_disks":3}]}`, four,
			[]Volume{{SizeBytes: 25 * gib, Disks: []string{"0", "1", "2"}, Controller: "1", RAIDType: "RAID0"}}, ""},
		{"too few disks for raid5", `{"logical_disks":[{"raid_level":"5","size_gb":1}]}`, four[:2], nil,
			"Redfish exception occurred. Error: failed to find matching physical disks for all logical disks"},
		{"named disks too few for raid5", `{"logical_disks":[{"raid_level":"5","size_gb":1,"controller":"1","physical_disks":["0","1"]}]}`, four, nil,
			"Redfish exception occurred. Error: RAID level 5 takes from 3 to 1000 physical disks, not 2"},
		{"larger than the disks", `{"logical_disks":[{"raid_level":"1","size_gb":11,"controller":"1","physical_disks":["0","1"]}]}`, four, nil,
			"Redfish exception occurred. Error: The physical disk space (10737418240 bytes) is not enough for the size of the logical disk (11811160064 bytes)"},
		{"larger than any pair", `{"logical_disks":[{"raid_level":"1","size_gb":11}]}`, four, nil,
			"Redfish exception occurred. Error: failed to find matching physical disks for all logical disks"},
		{"level the driver does not build", `{"logical_disks":[{"raid_level":"2","size_gb":1}]}`, four, nil,
			"Redfish exception occurred. Error: RAID level 2 is not supported by the driver. Supported RAID levels: 0, 1, 5, 6, 1+0, 5+0, 6+0"},
		{"MAX without disks", `{"logical_disks":[{"raid_level":"1","size_gb":"MAX"}]}`, four, nil,
			"Redfish exception occurred. Error: create_configuration called with invalid target_raid_configuration for node N. 'physical_disks' is missing from logical_disk while 'size_gb'='MAX' was requested: map[raid_level:1 size_gb:MAX]"},
		{"unknown disk", `{"logical_disks":[{"raid_level":"0","size_gb":1,"controller":"1","physical_disks":["9"]}]}`, four, nil,
			"Redfish exception occurred. Error: physical disk 9 of the logical disk map[controller:1 physical_disks:[9] raid_level:0 size_gb:1] is not a drive of a RAID controller of node N"},
		{"second volume does not fit: backtrack", `{"logical_disks":[{"raid_level":"0","size_gb":15},{"raid_level":"1","size_gb":9}]}`, four,
			[]Volume{{SizeBytes: 15 * gib, Disks: []string{"0", "1"}, Controller: "1", RAIDType: "RAID0"}, {SizeBytes: 9 * gib, Disks: []string{"2", "3"}, Controller: "1", RAIDType: "RAID1"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(t, tc.cfg)
			if err := Validate(c); err != nil {
				t.Fatal(err)
			}
			got, err := Plan("N", Parse(c), tc.phys)
			if tc.wantErr != "" {
				var pe *PlanError
				if err == nil || err.Error() != tc.wantErr || !errors.As(err, &pe) {
					t.Fatalf("Plan = %v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".LogicalDisk" }, cmp.Ignore())); d != "" {
				t.Errorf("Plan (-want +got):\n%s", d)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	now := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	got := Config([]driver.LogicalDisk{{ID: "1", Name: "root", Controller: "1", RAIDType: "RAID1", SizeBytes: 5 * gib}, {ID: "2", RAIDType: ""}}, now)
	want := map[string]any{"last_updated": "2026-12-05 22:00:00.000000", "logical_disks": []any{
		map[string]any{"id": "1", "name": "root", "controller": "1", "size_gb": int64(5), "raid_level": "1"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Config (-want +got):\n%s", d)
	}
}
