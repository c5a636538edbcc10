package raid

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Planning follows Ironic's redfish raid interface: sizes count in
// stripes of 64 MiB per disk; logical disks that name their physical
// disks and a size come first, then those without disks are matched
// (trying every disk count the level allows, on disks of one media type,
// protocol and size, backtracking when a later logical disk does not
// fit), then those that name their disks and ask for MAX.

const (
	gib      = int64(1) << 30
	stripeKB = 64 * 1024
)

type level struct {
	min, max int
	spanned  bool
	raidType string
	span     string
	overhead int
}

// levels are the RAID levels the redfish raid interface builds.
var levels = map[string]level{
	"0":   {min: 1, max: 1000, raidType: "RAID0"},
	"1":   {min: 2, max: 2, raidType: "RAID1", overhead: 1},
	"5":   {min: 3, max: 1000, raidType: "RAID5", overhead: 1},
	"6":   {min: 4, max: 1000, raidType: "RAID6", overhead: 2},
	"1+0": {spanned: true, raidType: "RAID10", span: "1"},
	"5+0": {spanned: true, raidType: "RAID50", span: "5"},
	"6+0": {spanned: true, raidType: "RAID60", span: "6"},
}

// levelOrder is the order Ironic lists its supported levels in.
var levelOrder = []string{"0", "1", "5", "6", "1+0", "5+0", "6+0"}

// PlanError is a configuration the physical disks cannot hold (Ironic's
// RedfishError text).
type PlanError struct{ Msg string }

func (e *PlanError) Error() string { return "Redfish exception occurred. Error: " + e.Msg }

func planErr(format string, a ...any) error { return &PlanError{Msg: fmt.Sprintf(format, a...)} }

// RAIDType returns the Redfish RAIDType of a raid_level, "" for a level
// the redfish raid interface does not build.
func RAIDType(lvl string) string { return levels[lvl].raidType }

// Level returns the raid_level of a Redfish RAIDType, "" when unknown.
func Level(raidType string) string {
	for _, l := range levelOrder {
		if levels[l].raidType == raidType {
			return l
		}
	}
	return ""
}

func unsupported(lvl string) error {
	return planErr("RAID level %s is not supported by the driver. Supported RAID levels: %s", lvl, strings.Join(levelOrder, ", "))
}

// spanLevel resolves a spanned level to the level of its spans.
func spanLevel(lvl string, spans int) (level, error) {
	l, ok := levels[lvl]
	if !ok {
		return level{}, unsupported(lvl)
	}
	if l.spanned {
		if spans <= 1 {
			return level{}, planErr("Spanned RAID volumes cannot contain a single span")
		}
		l = levels[l.span]
	}
	return l, nil
}

func overhead(lvl string, spans int) (int, error) {
	l, err := spanLevel(lvl, spans)
	return l.overhead * spans, err
}

func spansOf(lvl string, n int) (int, error) {
	switch lvl {
	case "0", "1", "5", "6":
		return 1, nil
	case "5+0", "6+0":
		return 2, nil
	case "1+0":
		return n >> 1, nil
	}
	return 0, planErr("Cannot calculate spans for RAID level \"%s\"", lvl)
}

// usable is the number of disks a level uses out of n.
func usable(lvl string, n int) (int, error) {
	switch lvl {
	case "0", "1", "5", "6":
		return n, nil
	case "5+0", "6+0", "1+0":
		return (n >> 1) << 1, nil
	}
	return 0, unsupported(lvl)
}

// Volume is one volume to ask the controller for.
type Volume struct {
	LogicalDisk
	// SizeBytes is the capacity; 0 for MAX (the controller sizes it).
	SizeBytes  int64
	Disks      []string
	Controller string
	RAIDType   string
}

// Spec is the volume as driver.RAIDController.CreateVolume takes it.
func (v Volume) Spec() driver.VolumeSpec {
	return driver.VolumeSpec{Controller: v.Controller, Drives: v.Disks, RAIDType: v.RAIDType, SizeBytes: v.SizeBytes, Name: v.Name}
}

// vol is a logical disk being planned.
type vol struct {
	ld         LogicalDisk
	size       int64 // bytes; -1 for MAX
	disks      []string
	controller string
}

type planner struct {
	phys  []driver.PhysicalDisk
	byID  map[string]driver.PhysicalDisk
	order []string // disk type keys in order of first appearance
}

func diskKey(d driver.PhysicalDisk) string {
	return fmt.Sprintf("%s|%s|%d", d.MediaType, d.Protocol, d.SizeBytes)
}

// protocolName is Ironic's interface_type of a Redfish drive protocol.
func protocolName(p string) string {
	switch strings.ToUpper(p) {
	case "SAS":
		return "sas"
	case "SATA":
		return "sata"
	}
	return ""
}

// Plan matches the logical disks to the physical disks and sizes them;
// nodeUUID goes into Ironic's messages. The volumes come in the order the
// controller should build them (grouped by controller).
func Plan(nodeUUID string, lds []LogicalDisk, phys []driver.PhysicalDisk) ([]Volume, error) {
	p := &planner{phys: phys, byID: map[string]driver.PhysicalDisk{}}
	var vols []*vol
	for _, ld := range lds {
		v := &vol{ld: ld, size: ld.SizeGB * gib, disks: ld.PhysicalDisks, controller: ld.Controller}
		if ld.Max {
			if len(ld.PhysicalDisks) == 0 {
				return nil, planErr("create_configuration called with invalid target_raid_configuration for node %s. 'physical_disks' is missing from logical_disk while 'size_gb'='MAX' was requested: %v", nodeUUID, ld.Raw)
			}
			v.size = -1
		}
		if _, ok := levels[ld.RAIDLevel]; !ok {
			return nil, unsupported(ld.RAIDLevel)
		}
		for _, id := range ld.PhysicalDisks {
			if !slices.ContainsFunc(phys, func(d driver.PhysicalDisk) bool { return d.ID == id }) {
				return nil, planErr("physical disk %s of the logical disk %v is not a drive of a RAID controller of node %s", id, ld.Raw, nodeUUID)
			}
		}
		vols = append(vols, v)
	}
	free := map[string]int64{}
	byType := map[string][]string{}
	reservedByType := map[string][]string{}
	reserved := map[string]bool{}
	for _, v := range vols {
		if len(v.disks) > 0 && v.size < 0 && v.ld.Share {
			for _, id := range v.disks {
				reserved[id] = true
			}
		}
	}
	for _, d := range phys {
		p.byID[d.ID] = d
		free[d.ID] = d.SizeBytes
		k := diskKey(d)
		if _, seen := byType[k]; !seen {
			p.order = append(p.order, k)
			byType[k], reservedByType[k] = []string{}, []string{}
		}
		if reserved[d.ID] {
			reservedByType[k] = append(reservedByType[k], d.ID)
		} else {
			byType[k] = append(byType[k], d.ID)
		}
	}
	for _, v := range vols {
		if len(v.disks) > 0 && !v.ld.Share {
			for _, id := range v.disks {
				k := diskKey(p.byID[id])
				byType[k] = slices.DeleteFunc(byType[k], func(x string) bool { return x == id })
			}
		}
	}
	var done []*vol
	for _, v := range vols {
		if len(v.disks) > 0 && v.size >= 0 {
			if err := p.props(v, free); err != nil {
				return nil, err
			}
			done = append(done, v)
		}
	}
	var without []*vol
	for _, v := range vols {
		if len(v.disks) == 0 {
			without = append(without, v)
		}
	}
	if len(without) > 0 {
		ok, nfree, err := p.assign(without, byType, free)
		if err == nil && !ok {
			for k := range byType {
				byType[k] = append(byType[k], reservedByType[k]...)
			}
			ok, nfree, err = p.assign(without, byType, free)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, planErr("failed to find matching physical disks for all logical disks")
		}
		free = nfree
		done = append(done, without...)
	}
	for _, v := range vols {
		if len(v.disks) > 0 && v.size < 0 && !slices.Contains(done, v) {
			if err := p.props(v, free); err != nil {
				return nil, err
			}
			done = append(done, v)
		}
	}
	out := make([]Volume, 0, len(done))
	for _, v := range done {
		size := v.size
		if size < 0 {
			size = 0
		}
		out = append(out, Volume{LogicalDisk: v.ld, SizeBytes: size, Disks: v.disks, Controller: v.controller, RAIDType: levels[v.ld.RAIDLevel].raidType})
	}
	slices.SortStableFunc(out, func(a, b Volume) int { return strings.Compare(a.Controller, b.Controller) })
	return out, nil
}

// props checks that v's disks hold it, takes the space it uses from free
// and picks its controller (Ironic's _calculate_volume_props).
func (p *planner) props(v *vol, free map[string]int64) error {
	var sel []string
	for _, d := range p.phys {
		if slices.Contains(v.disks, d.ID) {
			sel = append(sel, d.ID)
		}
	}
	lvl := v.ld.RAIDLevel
	spans, err := spansOf(lvl, len(sel))
	if err != nil {
		return err
	}
	if spans == 0 || len(sel)%spans != 0 {
		return planErr("For RAID level %s, the number of physical disks provided (%d) must be a multiple of the spans count (%d)", lvl, len(sel), spans)
	}
	sl, err := spanLevel(lvl, spans)
	if err != nil {
		return err
	}
	if len(sel) < sl.min*spans || len(sel) > sl.max*spans {
		return planErr("RAID level %s takes from %d to %d physical disks, not %d", lvl, sl.min*spans, sl.max*spans, len(sel))
	}
	maxSize, err := p.maxSize(lvl, sel, free, spans)
	if err != nil {
		return err
	}
	size := v.size
	if size < 0 {
		if maxSize == 0 {
			return planErr("size set to 'MAX' but could not allocate physical disk space")
		}
		size = maxSize
	} else if maxSize < size {
		return planErr("The physical disk space (%d bytes) is not enough for the size of the logical disk (%d bytes)", maxSize, size)
	}
	oh, _ := overhead(lvl, spans)
	volKB := size / 1024
	stripesPerVol := (volKB + stripeKB - 1) / stripeKB
	data := int64(len(sel) - oh)
	perDisk := (stripesPerVol + data - 1) / data * stripeKB * 1024
	for _, id := range sel {
		if free[id] < perDisk {
			return planErr("The free space of a disk (%d bytes) is not enough for the per-disk size of the logical disk (%d bytes)", free[id], perDisk)
		}
		free[id] -= perDisk
	}
	v.disks = sel
	if v.controller == "" {
		v.controller = p.byID[sel[0]].Controller
	}
	return nil
}

func (p *planner) maxSize(lvl string, sel []string, free map[string]int64, spans int) (int64, error) {
	if len(sel) == 0 {
		return 0, nil
	}
	least := free[sel[0]]
	for _, id := range sel {
		least = min(least, free[id])
	}
	stripes := least / 1024 / stripeKB
	oh, err := overhead(lvl, spans)
	if err != nil {
		return 0, err
	}
	if len(sel) <= oh {
		return 0, planErr("The number of physical drives (%d) is too few for the required number of overhead drives (%d)", len(sel), oh)
	}
	return stripes * stripeKB * int64(len(sel)-oh) * 1024, nil
}

// assign matches the first of queue to disks, then the rest, backtracking
// (Ironic's _assign_disks_to_volume). On success the volumes in queue
// carry their disks and the free space left is returned.
func (p *planner) assign(queue []*vol, byType map[string][]string, free map[string]int64) (bool, map[string]int64, error) {
	v := queue[0]
	lvl := v.ld.RAIDLevel
	for _, k := range p.order {
		var disks []string
		for _, id := range byType[k] {
			if free[id] > 0 {
				disks = append(disks, id)
			}
		}
		if len(disks) == 0 {
			continue
		}
		d0 := p.byID[disks[0]]
		if v.ld.DiskType != "" && !strings.EqualFold(v.ld.DiskType, d0.MediaType) {
			continue
		}
		if v.ld.Interface != "" && v.ld.Interface != protocolName(d0.Protocol) {
			continue
		}
		slices.SortStableFunc(disks, func(a, b string) int { return int(min(max(free[a]-free[b], -1), 1)) })
		if !v.ld.Share {
			disks = slices.DeleteFunc(disks, func(id string) bool { return free[id] != p.byID[id].SizeBytes })
		}
		maxSpans, err := spansOf(lvl, len(disks))
		if err != nil {
			return false, free, err
		}
		minSpans := min(2, maxSpans)
		lo, err := spanLevel(lvl, minSpans)
		if err != nil {
			return false, free, err
		}
		hi, err := spanLevel(lvl, maxSpans)
		if err != nil {
			return false, free, err
		}
		minDisks, maxDisks := lo.min*minSpans, hi.max*maxSpans
		for count := minDisks; count <= min(maxDisks, len(disks)); count++ {
			if v.ld.NumberOfPhysicalDisks != 0 && v.ld.NumberOfPhysicalDisks != count {
				continue
			}
			if u, _ := usable(lvl, count); u != count {
				continue
			}
			cand := &vol{ld: v.ld, size: v.size, disks: slices.Clone(disks[:count]), controller: v.controller}
			cfree := clone(free)
			if p.props(cand, cfree) != nil {
				continue
			}
			if len(queue) > 1 {
				ok, nfree, err := p.assign(queue[1:], byType, cfree)
				if err != nil || !ok {
					continue
				}
				cfree = nfree
			}
			*v = *cand
			return true, cfree, nil
		}
	}
	return false, free, nil
}

func clone(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Config renders the volumes a controller has as the node's raid_config,
// as Ironic's redfish raid interface records them (volumes without a RAID
// type are left out).
func Config(vols []driver.LogicalDisk, now time.Time) map[string]any {
	lds := []any{}
	for _, v := range vols {
		lvl := Level(v.RAIDType)
		if lvl == "" {
			continue
		}
		lds = append(lds, map[string]any{"id": v.ID, "name": v.Name, "controller": v.Controller,
			"size_gb": v.SizeBytes / gib, "raid_level": lvl})
	}
	return map[string]any{"logical_disks": lds, "last_updated": now.UTC().Format("2006-01-02 15:04:05.000000")}
}
