package store

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
)

// jsonCopy returns the node json.Unmarshal makes of json.Marshal(n),
// without encoding or decoding: a copy that shares nothing mutable with n,
// its free-form values as JSON gives them back (float64 numbers,
// map[string]any objects, []any arrays, nil for null), its times without
// a monotonic reading. ok is false when n holds something whose trip
// through JSON this copy does not reproduce (a time in another zone, a
// string that is not UTF-8, a value of a type it does not know, raw JSON
// other than canon's); the caller then decodes.
//
// canon is a node decoded from JSON (or copied by jsonCopy): its raw
// inventory and plugin data are in the form json.Marshal writes them, so
// n's, when they are the same bytes, come back from a decode as they are.
//
// A field added to Node must be added here (TestNodeJSONCopyEveryField
// fails until it is).
func (n *Node) jsonCopy(canon *Node) (*Node, bool) {
	c := jcopy{ok: true}
	out := &Node{
		ID: n.ID, Revision: n.Revision,
		UUID:                 c.str(n.UUID),
		Name:                 c.strp(n.Name),
		Driver:               c.str(n.Driver),
		DriverInfo:           c.obj(n.DriverInfo),
		DriverInternalInfo:   c.obj(n.DriverInternalInfo),
		Properties:           c.obj(n.Properties),
		Extra:                c.obj(n.Extra),
		InstanceInfo:         c.obj(n.InstanceInfo),
		InstanceUUID:         c.strp(n.InstanceUUID),
		AllocationUUID:       c.strp(n.AllocationUUID),
		ChassisUUID:          c.strp(n.ChassisUUID),
		PowerState:           c.strp(n.PowerState),
		TargetPowerState:     c.strp(n.TargetPowerState),
		ProvisionState:       c.str(n.ProvisionState),
		TargetProvisionState: c.strp(n.TargetProvisionState),
		ProvisionUpdatedAt:   c.timep(n.ProvisionUpdatedAt),
		LastError:            c.strp(n.LastError),
		Maintenance:          n.Maintenance,
		MaintenanceReason:    c.strp(n.MaintenanceReason),
		Fault:                c.strp(n.Fault),
		Reservation:          c.strp(n.Reservation),
		ConsoleEnabled:       n.ConsoleEnabled,
		ResourceClass:        c.strp(n.ResourceClass),
		ConductorGroup:       c.str(n.ConductorGroup),
		Traits:               c.strs(n.Traits),
		CleanStep:            c.obj(n.CleanStep),
		DeployStep:           c.obj(n.DeployStep),
		ServiceStep:          c.obj(n.ServiceStep),
		RAIDConfig:           c.obj(n.RAIDConfig),
		TargetRAIDConfig:     c.obj(n.TargetRAIDConfig),
		Owner:                c.strp(n.Owner),
		Lessee:               c.strp(n.Lessee),
		Description:          c.strp(n.Description),
		Protected:            n.Protected,
		ProtectedReason:      c.strp(n.ProtectedReason),
		Retired:              n.Retired,
		RetiredReason:        c.strp(n.RetiredReason),
		AutomatedClean:       boolp(n.AutomatedClean),
		NetworkData:          c.obj(n.NetworkData),
		Shard:                c.strp(n.Shard),
		ParentNode:           c.strp(n.ParentNode),
		DisablePowerOff:      n.DisablePowerOff,
		InstanceName:         c.strp(n.InstanceName),
		Health:               c.strp(n.Health),
		BootMode:             c.strp(n.BootMode),
		SecureBoot:           boolp(n.SecureBoot),
		InspectionStartedAt:  c.timep(n.InspectionStartedAt),
		InspectionFinishedAt: c.timep(n.InspectionFinishedAt),
		Interfaces:           c.strMap(n.Interfaces),
		VIFs:                 c.strs(n.VIFs),
		CreatedAt:            c.time(n.CreatedAt),
		UpdatedAt:            c.timep(n.UpdatedAt),
	}
	var ci, cp json.RawMessage
	if canon != nil {
		ci, cp = canon.Inventory, canon.PluginData
	}
	out.Inventory = c.raw(n.Inventory, ci)
	out.PluginData = c.raw(n.PluginData, cp)
	return out, c.ok
}

// jcopy copies values as a JSON round trip gives them back; ok turns
// false at the first one it cannot.
type jcopy struct{ ok bool }

func (c *jcopy) str(s string) string {
	if c.ok && !utf8.ValidString(s) {
		c.ok = false // json.Marshal writes U+FFFD for the bad bytes
	}
	return s
}

func (c *jcopy) strp(p *string) *string {
	if p == nil {
		return nil
	}
	s := c.str(*p)
	return &s
}

func boolp(p *bool) *bool {
	if p == nil {
		return nil
	}
	b := *p
	return &b
}

// time is t as decoded from its RFC 3339 text: UTC (a decoded offset
// would come back as a fixed zone, or Local), no monotonic reading.
func (c *jcopy) time(t time.Time) time.Time {
	if t.Location() != time.UTC {
		c.ok = false
	}
	return t.Round(0)
}

func (c *jcopy) timep(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	t := c.time(*p)
	return &t
}

func (c *jcopy) strs(s []string) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = c.str(v)
	}
	return out
}

func (c *jcopy) strMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[c.str(k)] = c.str(v)
	}
	return out
}

// raw is a raw JSON field written with omitempty: empty is absent (nil);
// otherwise only canon's bytes are known to come back unchanged
// (json.Marshal compacts raw JSON and escapes HTML in it).
func (c *jcopy) raw(r, canon json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return nil
	}
	if !bytes.Equal(r, canon) {
		c.ok = false
		return nil
	}
	return bytes.Clone(r)
}

func (c *jcopy) obj(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[c.str(k)] = c.value(v)
	}
	return out
}

// value is one free-form value as json.Unmarshal into an any gives it.
func (c *jcopy) value(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return c.str(x)
	case bool:
		return x
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			c.ok = false
		}
		return x
	// Integers come back as the float64 nearest them, as the decoder's
	// reading of their decimal text does.
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case int16:
		return float64(x)
	case int8:
		return float64(x)
	case uint:
		return float64(x)
	case uint64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint16:
		return float64(x)
	case uint8:
		return float64(x)
	case map[string]any:
		if x == nil {
			return nil // null
		}
		return c.obj(x)
	case []any:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.value(e)
		}
		return out
	case []map[string]any:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.value(e)
		}
		return out
	case []string:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.str(e)
		}
		return out
	case map[string]string:
		if x == nil {
			return nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[c.str(k)] = c.str(e)
		}
		return out
	}
	// Anything else (structs, pointers, json.Number, float32, []byte,
	// types with their own MarshalJSON): decoded.
	c.ok = false
	return nil
}
