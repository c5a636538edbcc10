// Package swraid is the agent's software RAID, as IPA's generic hardware
// manager builds it: Validate checks a target_raid_config against the
// limits of software RAID (shared with the conductor, which refuses a bad
// config before cleaning starts); Manager builds Linux md arrays with mdadm
// on holder partitions of the machine's disks (raid.create_configuration),
// stops and wipes them (raid.delete_configuration), lists them (the root
// device of a deploy is the first array) and makes every member disk boot
// the image written onto an array.
package swraid

import (
	"fmt"
	"strings"
)

// Levels are the RAID levels software RAID builds (mdadm's 0, 1 and 10).
var Levels = []string{"0", "1", "1+0"}

// LogicalDisk is one entry of a target_raid_config, as software RAID
// reads it.
type LogicalDisk struct {
	RAIDLevel string
	// SizeGB is the size in GiB; Max is size_gb "MAX".
	SizeGB     int64
	Max        bool
	Name       string
	Controller string
	// PhysicalDisks are root device hints naming the holder disks.
	PhysicalDisks []map[string]any
	Root          bool
}

// IsSoftware reports whether cfg asks for software RAID (a logical disk
// with controller "software").
func IsSoftware(cfg map[string]any) bool {
	list, _ := cfg["logical_disks"].([]any)
	for _, x := range list {
		if ld, _ := x.(map[string]any); ld["controller"] == "software" {
			return true
		}
	}
	return false
}

// Parse reads the logical disks of cfg (a config Ironic's schema accepted).
func Parse(cfg map[string]any) []LogicalDisk {
	list, _ := cfg["logical_disks"].([]any)
	out := make([]LogicalDisk, 0, len(list))
	for _, x := range list {
		m, _ := x.(map[string]any)
		ld := LogicalDisk{}
		ld.RAIDLevel, _ = m["raid_level"].(string)
		switch v := m["size_gb"].(type) {
		case string:
			ld.Max = v == "MAX"
		case float64:
			ld.SizeGB = int64(v)
		}
		ld.Name, _ = m["volume_name"].(string)
		ld.Controller, _ = m["controller"].(string)
		ld.Root, _ = m["is_root_volume"].(bool)
		if l, ok := m["physical_disks"].([]any); ok {
			ld.PhysicalDisks = []map[string]any{}
			for _, e := range l {
				h, _ := e.(map[string]any)
				ld.PhysicalDisks = append(ld.PhysicalDisks, h)
			}
		}
		out = append(out, ld)
	}
	return out
}

// Validate checks cfg against the limits of software RAID, with IPA's
// messages: one or two logical disks, all with controller software, the
// first RAID-1, at most one of size MAX, the second of level 0, 1 or 1+0,
// physical_disks as a list of at least two device hints, and (disks > 0:
// the machine's disk count) enough disks for each level. node is the
// node's UUID, named in the error.
func Validate(node string, cfg map[string]any, disks int) error {
	raw, _ := cfg["logical_disks"].([]any)
	if len(raw) == 0 {
		return fmt.Errorf("RAID config contains no logical disks")
	}
	lds := Parse(cfg)
	var errs []string
	if len(lds) > 2 {
		errs = append(errs, "Software RAID configuration requires one or two logical disks")
	}
	for i, ld := range lds {
		if ld.Controller != "software" {
			errs = append(errs, "Software RAID configuration requires all logical disks to have 'controller'='software'")
		}
		if pd, ok := raw[i].(map[string]any)["physical_disks"]; ok {
			l, isList := pd.([]any)
			if !isList || len(l) < 2 {
				errs = append(errs, "The physical_disks parameter for software RAID must be a list with at least 2 items, each specifying a disk in the device hints format")
			}
			for _, e := range l {
				if _, isMap := e.(map[string]any); !isMap {
					errs = append(errs, "The physical_disks parameter for software RAID must be a list of device hints (dictionaries)")
					break
				}
			}
		}
	}
	if lds[0].RAIDLevel != "1" {
		errs = append(errs, "Software RAID Configuration requires RAID-1 for the first logical disk")
	}
	if len(lds) == 2 {
		if lds[0].Max && lds[1].Max {
			errs = append(errs, "Software RAID can have only one RAID device with size 'MAX'")
		}
		if lvl := lds[1].RAIDLevel; !contains(Levels, lvl) {
			errs = append(errs, "Software RAID configuration does not support RAID level "+lvl)
		}
	}
	if disks > 0 {
		for _, ld := range lds {
			n := disks
			if ld.PhysicalDisks != nil {
				n = min(n, len(ld.PhysicalDisks))
			}
			if need := minDisks(ld.RAIDLevel); n < need {
				errs = append(errs, fmt.Sprintf("Software RAID level %s needs at least %d disks, the machine has %d", ld.RAIDLevel, need, n))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("Could not validate Software RAID config for %s: %s", node, strings.Join(errs, "; ")) //lint:ignore ST1005 IPA's message
	}
	return nil
}

// minDisks is the fewest members mdadm takes for a level.
func minDisks(level string) int {
	switch level {
	case "1+0":
		return 2 // mdadm's RAID-10 (near layout) mirrors over two or more
	case "1":
		return 2
	}
	return 1
}

// mdLevel is mdadm's name of a level.
func mdLevel(level string) string {
	if level == "1+0" {
		return "10"
	}
	return level
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
