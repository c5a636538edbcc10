package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// roundTrip is what the store held before jsonCopy: the node decoded from
// its JSON.
func roundTrip(t testing.TB, n *Node) *Node {
	t.Helper()
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var out Node
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// jsonCopy gives the decoded node, or says it cannot: free-form values of
// Go types (ints, string slices and maps) as JSON gives them back, nulls
// inside objects, times, raw JSON the same as the canonical node's.
func TestNodeJSONCopy(t *testing.T) {
	now := time.Now().UTC() // with a monotonic reading
	later := now.Add(time.Hour)
	name, bad := "n1", "a\xffb"
	yes := true
	zone := time.FixedZone("X", 3600)
	inv := json.RawMessage(`{"cpu":{"count":8},"html":"\u003cb\u003e"}`)
	base := func() *Node {
		return &Node{ID: 3, Revision: 7, UUID: "11111111-1111-1111-1111-111111111111", Name: &name,
			CreatedAt: now, UpdatedAt: &later, ProvisionUpdatedAt: &now, AutomatedClean: &yes,
			Traits: []string{"CUSTOM_A"}, VIFs: []string{}, Interfaces: map[string]string{"boot": "fake"},
			DriverInfo: Object{"ipmi_address": "10.0.0.1", "port": 623, "big": int64(math.MaxInt64), "u": uint64(math.MaxUint64),
				"f": 0.1, "neg0": math.Copysign(0, -1), "nested": map[string]any{"a": []any{1, "x", map[string]any{"b": true}, nil}}},
			DriverInternalInfo: Object{"agent_url": "http://10.0.0.9:9999", "clean_step_index": 2,
				"steps": []map[string]any{{"step": "erase", "priority": int32(99)}}, "names": []string{"a", "b"},
				"env": map[string]string{"k": "v"}, "nilmap": map[string]any(nil), "nilslice": []any(nil), "nilstrs": []string(nil)},
			Extra: Object{}, Properties: nil, CleanStep: Object{"step": "erase_devices_metadata"}}
	}
	for _, tc := range []struct {
		name string
		mod  func(n *Node)
		ok   bool
	}{
		{"plain", func(n *Node) {}, true},
		{"no raw", func(n *Node) { n.Inventory, n.PluginData = json.RawMessage{}, nil }, true},
		{"canonical inventory", func(n *Node) { n.Inventory = inv }, true},
		{"inventory that json.Marshal rewrites", func(n *Node) { n.Inventory = json.RawMessage(`{"cpu": {"count": 8}, "html": "<b>"}`) }, false},
		{"time in another zone", func(n *Node) { x := now.In(zone); n.InspectionStartedAt = &x }, false},
		{"string that is not UTF-8", func(n *Node) { n.Description = &bad }, false},
		{"key that is not UTF-8", func(n *Node) { n.Extra[bad] = 1 }, false},
		{"struct value", func(n *Node) { n.Extra["s"] = struct{ A int }{1} }, false},
		{"pointer value", func(n *Node) { n.Extra["p"] = &name }, false},
		{"float32", func(n *Node) { n.Extra["f"] = float32(0.1) }, false},
		{"json.Number", func(n *Node) { n.Extra["n"] = json.Number("12") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.mod(n)
			canon := &Node{Inventory: inv}
			cp, ok := n.jsonCopy(canon)
			if ok != tc.ok {
				t.Fatalf("jsonCopy ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			want := roundTrip(t, n)
			if !reflect.DeepEqual(cp, want) {
				t.Fatalf("jsonCopy =\n%#v\nwant (decoded)\n%#v", cp, want)
			}
			// Nothing shared: changing the copy leaves n as it was.
			cp.DriverInfo["nested"].(map[string]any)["a"].([]any)[2].(map[string]any)["b"] = false
			*cp.Name = "changed"
			cp.Traits[0] = "changed"
			cp.Interfaces["boot"] = "changed"
			if n.DriverInfo["nested"].(map[string]any)["a"].([]any)[2].(map[string]any)["b"] != true ||
				*n.Name != "n1" || n.Traits[0] != "CUSTOM_A" || n.Interfaces["boot"] != "fake" {
				t.Fatalf("the copy shares state with the original: %#v", n)
			}
			// A copy of the copy (a transaction's read of the cache) is
			// the same again.
			again, ok := cp.jsonCopy(cp)
			if !ok || !reflect.DeepEqual(again, cp) {
				t.Fatalf("copy of the decoded node: ok %v\n%#v\n%#v", ok, again, cp)
			}
		})
	}
}

// Every field of Node is copied: a node with all of them set (by
// reflection, so a new field is covered too) copies to its decode.
func TestNodeJSONCopyEveryField(t *testing.T) {
	n := &Node{}
	v := reflect.ValueOf(n).Elem()
	now := time.Now().UTC().Round(0)
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(now))
		case f.Type() == reflect.TypeOf(&time.Time{}):
			f.Set(reflect.ValueOf(&now))
		case f.Type() == reflect.TypeOf(json.RawMessage{}):
			f.Set(reflect.ValueOf(json.RawMessage(`{"f":` + `"` + v.Type().Field(i).Name + `"}`)))
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case f.Kind() == reflect.Int64:
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Type() == reflect.TypeOf((*string)(nil)):
			s := v.Type().Field(i).Name
			f.Set(reflect.ValueOf(&s))
		case f.Type() == reflect.TypeOf((*bool)(nil)):
			b := true
			f.Set(reflect.ValueOf(&b))
		case f.Type() == reflect.TypeOf(Object{}):
			f.Set(reflect.ValueOf(Object{v.Type().Field(i).Name: float64(i)}))
		case f.Type() == reflect.TypeOf([]string{}):
			f.Set(reflect.ValueOf([]string{v.Type().Field(i).Name}))
		case f.Type() == reflect.TypeOf(map[string]string{}):
			f.Set(reflect.ValueOf(map[string]string{"k": v.Type().Field(i).Name}))
		default:
			t.Fatalf("field %s of type %s: teach this test (and Node.jsonCopy) about it", v.Type().Field(i).Name, f.Type())
		}
	}
	want := roundTrip(t, n)
	cp, ok := n.jsonCopy(want)
	if !ok {
		t.Fatal("jsonCopy refused a node of plain values")
	}
	if !reflect.DeepEqual(cp, want) {
		t.Fatalf("jsonCopy =\n%#v\nwant (decoded)\n%#v", cp, want)
	}
}

// The store's cached node after a write, and a transaction's read of it,
// are what decoding the stored record gives, whatever Go types the writer
// put in (a heartbeat's read-modify-write decodes no node).
func TestCachedNodeIsDecoded(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	u := "22222222-2222-2222-2222-222222222222"
	n := &Node{UUID: u, DriverInternalInfo: Object{"clean_step_index": 1, "steps": []string{"a"}}, Extra: Object{}}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	for i, mod := range []func(n *Node){
		func(n *Node) { n.DriverInternalInfo["agent_last_heartbeat"] = time.Now().UTC().String() },
		func(n *Node) { n.DriverInternalInfo["progress"] = map[string]any{"bytes": int64(5), "at": "x"} },
		func(n *Node) { n.Extra["s"] = struct{ A int }{1} }, // decoded
		func(n *Node) { delete(n.Extra, "s"); n.Inventory = json.RawMessage(`{"a": 1}`) },
		func(n *Node) { n.DriverInternalInfo["i"] = 3 }, // raw JSON as stored
	} {
		var put *Node
		if err := s.Update(ctx, func(tx Tx) error {
			x, err := tx.Node(u)
			if err != nil {
				return err
			}
			mod(x)
			if err := tx.PutNode(x); err != nil {
				return err
			}
			put = x
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		put.Extra["after"] = "the write" // the cache kept its own copy
		delete(put.Extra, "after")
		got, err := s.Node(u)
		if err != nil {
			t.Fatal(err)
		}
		var stored Node
		if err := s.kv.view(ctx, func(tx kvTx) error {
			raw, err := tx.get(tNodes, u)
			if err == nil {
				err = json.Unmarshal(raw, &stored)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &stored) {
			t.Fatalf("write %d: cached\n%#v\nstored\n%#v", i, got, &stored)
		}
		var read *Node
		_ = s.Update(ctx, func(tx Tx) error { read, err = tx.Node(u); return errUnchangedTest })
		if err != nil || !reflect.DeepEqual(read, &stored) {
			t.Fatalf("write %d: read in a transaction (%v)\n%#v\nstored\n%#v", i, err, read, &stored)
		}
	}
}

var errUnchangedTest = errors.New("no write")

// BenchmarkNodeJSONCopy is the cache's copy of a heartbeat's node write:
// the JSON copy against the decode it replaces.
func BenchmarkNodeJSONCopy(b *testing.B) {
	n := heartbeatNode()
	raw, err := json.Marshal(n)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out Node
			if err := json.Unmarshal(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsonCopy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := n.jsonCopy(n); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("deepCopy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = deepCopy(n)
		}
	})
}

// heartbeatNode is a node as it stands while its agent heartbeats in
// cleaning (decoded: as the cache holds it).
func heartbeatNode() *Node {
	now := time.Now().UTC().Round(0)
	name, ps, tps, pw := "hb-1", "clean wait", "available", "power on"
	rc := "baremetal"
	n := &Node{ID: 12, Revision: 40, UUID: "33333333-3333-3333-3333-333333333333", Name: &name, Driver: "fake-hardware",
		ProvisionState: ps, TargetProvisionState: &tps, PowerState: &pw, ResourceClass: &rc, CreatedAt: now, UpdatedAt: &now,
		ProvisionUpdatedAt: &now,
		DriverInfo:         Object{"deploy_kernel": "http://10.0.0.1/k", "deploy_ramdisk": "http://10.0.0.1/r"},
		DriverInternalInfo: Object{"agent_secret_token": "0123456789abcdef0123456789abcdef", "agent_url": "http://127.0.0.1:40000",
			"agent_version": "10.0.0", "agent_last_heartbeat": now.Format(time.RFC3339Nano), "clean_step_index": 0,
			"clean_steps":    []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "priority": 99, "args": map[string]any{}}},
			"agent_progress": map[string]any{"command": "clean.execute_clean_step", "phase": "running", "started_at": "x", "last_heard": "y"}},
		Properties:   Object{"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"},
		InstanceInfo: Object{}, Extra: Object{}, CleanStep: Object{"interface": "deploy", "step": "erase_devices_metadata", "priority": 99},
		Interfaces: map[string]string{"bios": "no-bios", "boot": "fake", "console": "no-console", "deploy": "direct", "inspect": "no-inspect",
			"management": "fake", "network": "noop", "power": "fake", "raid": "no-raid", "rescue": "no-rescue", "storage": "noop", "vendor": "no-vendor"},
		Traits: []string{}, VIFs: []string{}}
	raw, _ := json.Marshal(n)
	var out Node
	_ = json.Unmarshal(raw, &out)
	return &out
}

// BenchmarkHeartbeatWrite is a heartbeat's read-modify-write of its node
// on bbolt (the agent's URL, version and time in driver_internal_info),
// what the store spends on it: the read, the encode, the feed's diff and
// log, the cache's copy, the commit; through PutNode and through
// UpdateNodeInfo (the heartbeat's way).
func BenchmarkHeartbeatWrite(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	n := heartbeatNode()
	n.ID, n.Revision = 0, 0
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
		b.Fatal(err)
	}
	beat := func(d Object) {
		d["agent_url"], d["agent_version"] = "http://127.0.0.1:40000", "10.0.0"
		d["agent_last_heartbeat"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b.Run("PutNode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Update(ctx, func(tx Tx) error {
				x, err := tx.Node(n.UUID)
				if err != nil {
					return err
				}
				beat(x.DriverInternalInfo)
				return tx.PutNode(x)
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateNodeInfo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Update(ctx, func(tx Tx) error {
				return tx.UpdateNodeInfo(n.UUID, func(_ *Node, d Object) error { beat(d); return nil })
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// UpdateNodeInfo writes a node's driver_internal_info without copying the
// node: the stored record and the cache's copy are what PutNode makes of
// it (what decoding the record gives), the committed node readers hold
// is left as it was, a failing fn writes nothing, and inside a
// transaction that changed the node first it sees that change.
func TestUpdateNodeInfo(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	n := heartbeatNode()
	n.ID, n.Revision = 0, 0
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	stored := func() *Node {
		var x Node
		if err := s.kv.view(ctx, func(tx kvTx) error {
			raw, err := tx.get(tNodes, n.UUID)
			if err == nil {
				err = json.Unmarshal(raw, &x)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return &x
	}
	before, _ := s.Node(n.UUID)
	beforeRev := before.Revision
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.UpdateNodeInfo(*n.Name, func(cur *Node, d Object) error {
			if cur.Revision != beforeRev || cur.UUID != n.UUID {
				return fmt.Errorf("fn got revision %d of %s", cur.Revision, cur.UUID)
			}
			d["agent_url"], d["count"] = "http://10.0.0.2:9999", 3
			delete(d, "agent_progress")
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Node(n.UUID)
	want := stored()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cached\n%#v\nstored\n%#v", got, want)
	}
	if got.DriverInternalInfo["count"] != 3.0 || got.DriverInternalInfo["agent_progress"] != nil || got.Revision == beforeRev {
		t.Fatalf("driver_internal_info %v (revision %d)", got.DriverInternalInfo, got.Revision)
	}
	if before.Revision != beforeRev || before.DriverInternalInfo["agent_url"] != "http://127.0.0.1:40000" || before.DriverInternalInfo["agent_progress"] == nil {
		t.Fatalf("the committed node a reader held changed: %v", before.DriverInternalInfo)
	}
	// A failing fn writes nothing.
	bad := errors.New("refused")
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.UpdateNodeInfo(n.UUID, func(_ *Node, d Object) error { d["x"] = 1; return bad })
	}); !errors.Is(err, bad) {
		t.Fatalf("Update = %v, want %v", err, bad)
	}
	if x, _ := s.Node(n.UUID); x != got {
		t.Fatal("a failed UpdateNodeInfo changed the node")
	}
	// After a PutNode in the same transaction: the node as written there.
	if err := s.Update(ctx, func(tx Tx) error {
		x, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		x.ProvisionState = "cleaning"
		if err := tx.PutNode(x); err != nil {
			return err
		}
		return tx.UpdateNodeInfo(n.UUID, func(cur *Node, d Object) error {
			if cur.ProvisionState != "cleaning" {
				return fmt.Errorf("fn got state %q", cur.ProvisionState)
			}
			d["agent_version"] = "11.0.0"
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Node(n.UUID)
	want = stored()
	if !reflect.DeepEqual(got, want) || got.ProvisionState != "cleaning" || got.DriverInternalInfo["agent_version"] != "11.0.0" {
		t.Fatalf("cached\n%#v\nstored\n%#v", got, want)
	}
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.UpdateNodeInfo("44444444-4444-4444-4444-444444444444", func(*Node, Object) error { return nil })
	}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateNodeInfo of a missing node = %v", err)
	}
}
