// Package raid reads a node's target_raid_config as Ironic does: Validate
// checks it against the rules of Ironic's RAID configuration schema (with
// jsonschema's messages) and its one-root-volume rule; Plan matches its
// logical disks to a machine's physical disks and sizes them as Ironic's
// redfish raid interface does, refusing what the disks cannot hold with
// Ironic's messages; Config renders the volumes a controller built as the
// node's raid_config.
package raid

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/python"
)

// Levels are the raid_level values Ironic's schema accepts.
var Levels = []string{"JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"}

// Properties describes the logical disk properties, as
// /v1/drivers/{driver}/raid/logical_disk_properties lists them.
var Properties = map[string]string{
	"raid_level":               "RAID level for the logical disk. Valid values are 'JBOD', '0', '1', '2', '5', '6', '1+0', '5+0' and '6+0'. Required.",
	"size_gb":                  "Size in GiB (Integer) for the logical disk. Use 'MAX' as size_gb if this logical disk is supposed to use the rest of the space available. Required.",
	"volume_name":              "Name of the volume to be created. If this is not specified, it will be auto-generated. Optional.",
	"is_root_volume":           "Specifies whether this disk is a root volume. By default, this is False. Optional.",
	"share_physical_disks":     "Specifies whether other logical disks can share physical disks with this logical disk. By default, this is False. Optional.",
	"disk_type":                "The type of disk preferred. Valid values are 'hdd' and 'ssd'. If this is not specified, disk type will not be a selection criterion for choosing backing physical disks. Optional.",
	"interface_type":           "The interface type of disk. Valid values are 'sata', 'scsi' and 'sas'. If this is not specified, interface type will not be a selection criterion for choosing backing physical disks. Optional.",
	"number_of_physical_disks": "Number of physical disks to use for this logical disk. By default, the driver uses the minimum number of disks required for that RAID level. Optional.",
	"controller":               "Controller to use for this logical disk. If not specified, the driver will choose a suitable RAID controller on the bare metal node. Optional.",
	"physical_disks":           "The physical disks to use for this logical disk. If not specified, the driver will choose suitable physical disks to use. Optional.",
}

// ValidationError is a target_raid_config refused by Validate.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func schemaErr(format string, a ...any) error {
	return &ValidationError{Msg: "RAID config validation error: " + fmt.Sprintf(format, a...)}
}

func oneOf(v any, values []string) error {
	return schemaErr("%s is not one of ['%s']", python.Repr(v), strings.Join(values, "', '"))
}

func notType(v any, typ string) error {
	return schemaErr("%s is not of type '%s'", python.Repr(v), typ)
}

func isInt(v any) bool {
	f, ok := v.(float64)
	return ok && f == float64(int64(f))
}

// Validate checks cfg, a target_raid_config, as Ironic's schema and root
// volume rule do.
func Validate(cfg map[string]any) error {
	if err := additional(cfg, []string{"logical_disks"}); err != nil {
		return err
	}
	raw, ok := cfg["logical_disks"]
	if !ok {
		return schemaErr("'logical_disks' is a required property")
	}
	list, ok := raw.([]any)
	if !ok {
		return notType(raw, "array")
	}
	if len(list) == 0 {
		return schemaErr("[] should be non-empty")
	}
	roots := 0
	for _, item := range list {
		ld, ok := item.(map[string]any)
		if !ok {
			return notType(item, "object")
		}
		if err := validateDisk(ld); err != nil {
			return err
		}
		if ld["is_root_volume"] == true {
			roots++
		}
	}
	if roots > 1 {
		return &ValidationError{Msg: fmt.Sprintf("Raid config cannot have more than one root volume. %d root volumes were specified", roots)}
	}
	return nil
}

func additional(m map[string]any, allowed []string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, "'"+k+"'")
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return schemaErr("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
}

var diskProps = []string{"raid_level", "size_gb", "volume_name", "is_root_volume", "share_physical_disks", "disk_type",
	"interface_type", "number_of_physical_disks", "controller", "physical_disks"}

func validateDisk(ld map[string]any) error {
	// jsonschema reports properties first, then required, additional
	// properties and dependencies; a config breaking several rules gets
	// one of its errors, as Ironic's message names one.
	for _, k := range diskProps {
		v, ok := ld[k]
		if !ok {
			continue
		}
		switch k {
		case "raid_level":
			s, isStr := v.(string)
			if !isStr {
				return notType(v, "string")
			}
			if !slices.Contains(Levels, s) {
				return oneOf(v, Levels)
			}
		case "size_gb":
			if s, isStr := v.(string); (isStr && s != "MAX") || (!isStr && (!isInt(v) || v.(float64) < 0)) {
				return schemaErr("%s is not valid under any of the given schemas", python.Repr(v))
			}
		case "volume_name", "controller":
			if _, isStr := v.(string); !isStr {
				return notType(v, "string")
			}
		case "is_root_volume", "share_physical_disks":
			if _, isBool := v.(bool); !isBool {
				return notType(v, "boolean")
			}
		case "disk_type":
			if _, isStr := v.(string); !isStr {
				return notType(v, "string")
			}
			if !slices.Contains([]string{"hdd", "ssd"}, v.(string)) {
				return oneOf(v, []string{"hdd", "ssd"})
			}
		case "interface_type":
			if _, isStr := v.(string); !isStr {
				return notType(v, "string")
			}
			if !slices.Contains([]string{"sata", "scsi", "sas"}, v.(string)) {
				return oneOf(v, []string{"sata", "scsi", "sas"})
			}
		case "number_of_physical_disks":
			if !isInt(v) {
				return notType(v, "integer")
			}
			if v.(float64) <= 0 {
				return schemaErr("%s is less than or equal to the minimum of 0", python.Repr(v))
			}
		case "physical_disks":
			l, isList := v.([]any)
			valid := isList
			if isList && len(l) > 0 {
				_, strs := l[0].(string)
				_, objs := l[0].(map[string]any)
				for _, e := range l {
					_, s := e.(string)
					_, o := e.(map[string]any)
					strs, objs = strs && s, objs && o
				}
				valid = strs || (objs && len(l) >= 2)
			}
			if !valid {
				return schemaErr("%s is not valid under any of the given schemas", python.Repr(v))
			}
		}
	}
	for _, k := range []string{"raid_level", "size_gb"} {
		if _, ok := ld[k]; !ok {
			return schemaErr("'%s' is a required property", k)
		}
	}
	if err := additional(ld, diskProps); err != nil {
		return err
	}
	if _, ok := ld["physical_disks"]; ok {
		if _, ok := ld["controller"]; !ok {
			return schemaErr("'controller' is a dependency of 'physical_disks'")
		}
	}
	return nil
}

// LogicalDisk is one entry of a validated target_raid_config.
type LogicalDisk struct {
	RAIDLevel string
	// SizeGB is the size in GiB; Max is size_gb "MAX".
	SizeGB                int64
	Max                   bool
	Name                  string
	Root, Share           bool
	DiskType, Interface   string
	NumberOfPhysicalDisks int
	Controller            string
	PhysicalDisks         []string
	// Raw is the entry as the node has it.
	Raw map[string]any
}

// Parse reads a target_raid_config that Validate accepted. Physical disks
// given as objects (a form other raid interfaces read) are kept in Raw
// only.
func Parse(cfg map[string]any) []LogicalDisk {
	list, _ := cfg["logical_disks"].([]any)
	out := make([]LogicalDisk, 0, len(list))
	for _, item := range list {
		m, _ := item.(map[string]any)
		ld := LogicalDisk{Raw: m}
		ld.RAIDLevel, _ = m["raid_level"].(string)
		if s, _ := m["size_gb"].(string); s == "MAX" {
			ld.Max = true
		} else if f, ok := m["size_gb"].(float64); ok {
			ld.SizeGB = int64(f)
		}
		ld.Name, _ = m["volume_name"].(string)
		ld.Root, _ = m["is_root_volume"].(bool)
		ld.Share, _ = m["share_physical_disks"].(bool)
		ld.DiskType, _ = m["disk_type"].(string)
		ld.Interface, _ = m["interface_type"].(string)
		if f, ok := m["number_of_physical_disks"].(float64); ok {
			ld.NumberOfPhysicalDisks = int(f)
		}
		ld.Controller, _ = m["controller"].(string)
		if l, ok := m["physical_disks"].([]any); ok {
			for _, e := range l {
				if s, ok := e.(string); ok {
					ld.PhysicalDisks = append(ld.PhysicalDisks, s)
				}
			}
		}
		out = append(out, ld)
	}
	return out
}
