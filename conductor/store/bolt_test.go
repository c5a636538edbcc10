package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func strp(s string) *string { return &s }

func TestNodeCRUDAndIndexes(t *testing.T) { forEachBackend(t, testNodeCRUDAndIndexes) }

func testNodeCRUDAndIndexes(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	n := &Node{UUID: "11111111-1111-1111-1111-111111111111", Name: strp("n1"), Driver: "fake-hardware", ProvisionState: "enroll"}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	if n.ID != 1 || n.Revision == 0 {
		t.Fatalf("after create: id %d rev %d, want id 1 and a revision", n.ID, n.Revision)
	}
	tests := []struct {
		name  string
		node  *Node
		field string
	}{
		{"duplicate name", &Node{UUID: "22222222-2222-2222-2222-222222222222", Name: strp("n1")}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(tc.node) })
			var de *DuplicateError
			if !errors.As(err, &de) || de.Field != tc.field {
				t.Fatalf("PutNode = %v, want DuplicateError on %s", err, tc.field)
			}
			if _, err := s.Node(tc.node.UUID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("failed create left a node behind: %v", err)
			}
		})
	}
	// Stale revision: two copies read, the second write must fail.
	var a, b *Node
	s.Update(ctx, func(tx Tx) error { a, _ = tx.Node("n1"); b, _ = tx.Node("n1"); return nil })
	a.Extra = Object{"x": 1}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(a) }); err != nil {
		t.Fatal(err)
	}
	b.Extra = Object{"y": 2}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(b) }); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale PutNode = %v, want ErrConflict", err)
	}
	// Rename frees the old name.
	if err := s.Update(ctx, func(tx Tx) error {
		n, err := tx.Node("n1")
		if err != nil {
			return err
		}
		n.Name = strp("n2")
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Node("n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Node(n1) after rename = %v, want not found", err)
	}
	got, err := s.Node("n2")
	if err != nil || got.Extra["x"] != float64(1) {
		t.Fatalf("Node(n2) = %+v, %v", got, err)
	}
	// Reopen: everything is loaded back.
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err = s2.Node("n2")
	if err != nil || got.UUID != n.UUID || got.CreatedAt.IsZero() || got.UpdatedAt == nil {
		t.Fatalf("reopened Node(n2) = %+v, %v", got, err)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.DeleteNode(n.UUID) }); err != nil {
		t.Fatal(err)
	}
	if len(s2.Nodes(nil)) != 0 {
		t.Fatalf("Nodes after delete = %d, want 0", len(s2.Nodes(nil)))
	}
}

func TestConcurrentUpdatesNeverLoseWrites(t *testing.T) {
	forEachBackend(t, testConcurrentUpdatesNeverLoseWrites)
}

func testConcurrentUpdatesNeverLoseWrites(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	n := &Node{UUID: "33333333-3333-3333-3333-333333333333", Extra: Object{}}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	updateExtraConcurrently(t, n.UUID, 20, s)
	got, _ := s.Node(n.UUID)
	if len(got.Extra) != 20 {
		t.Fatalf("extra has %d keys, want 20 (lost updates)", len(got.Extra))
	}
}

// updateExtraConcurrently sets extra k0..k<count-1> of node id, each in a
// read-modify-write of its own, all at once, through the stores in turn.
func updateExtraConcurrently(t *testing.T, id string, count int, stores ...Store) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range count {
		s := stores[i%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(context.Background(), func(tx Tx) error {
				n, err := tx.Node(id)
				if err != nil {
					return err
				}
				n.Extra[fmt.Sprint("k", i)] = i
				return tx.PutNode(n)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestListOrderAndPortIndex(t *testing.T) { forEachBackend(t, testListOrderAndPortIndex) }

func testListOrderAndPortIndex(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	for i := range 50 {
		u := fmt.Sprintf("00000000-0000-0000-0000-%012d", 50-i)
		if err := s.Update(ctx, func(tx Tx) error {
			if err := tx.PutNode(&Node{UUID: u}); err != nil {
				return err
			}
			return tx.PutPort(&Port{UUID: "p" + u[1:], NodeUUID: u, Address: fmt.Sprintf("52:54:00:00:00:%02x", i)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	nodes := s.Nodes(nil)
	for i := 1; i < len(nodes); i++ {
		if nodes[i].ID <= nodes[i-1].ID {
			t.Fatalf("Nodes not in id order at %d", i)
		}
	}
	p, err := s.PortByAddress("52:54:00:00:00:07")
	if err != nil || p.NodeUUID != "00000000-0000-0000-0000-000000000043" {
		t.Fatalf("PortByAddress = %+v, %v", p, err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		return tx.PutPort(&Port{UUID: "99999999-9999-9999-9999-999999999999", Address: "52:54:00:00:00:07"})
	})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate MAC = %v, want ErrDuplicate", err)
	}
}

func BenchmarkListNodes10k(b *testing.B) {
	ctx := context.Background()
	s, err := OpenBolt(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Update(ctx, func(tx Tx) error {
		for i := range 10000 {
			if err := tx.PutNode(&Node{UUID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), ProvisionState: "available"}); err != nil {
				return err
			}
		}
		return nil
	})
	b.ResetTimer()
	for range b.N {
		if n := len(s.Nodes(func(n *Node) bool { return n.ProvisionState == "available" })); n != 10000 {
			b.Fatal(n)
		}
	}
}

// A node's history records every new last_error in the transaction that
// sets it, keeps the last MaxHistory events, survives a reopen and goes
// with the node.
func TestNodeHistory(t *testing.T) { forEachBackend(t, testNodeHistory) }

func testNodeHistory(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	switch s := s.(type) {
	case *Bolt:
		s.Host = "conductor-1"
	case *Etcd:
		s.Host = "conductor-1"
	}
	const id = "33333333-3333-3333-3333-333333333333"
	set := func(state string, lastErr *string) {
		t.Helper()
		if err := s.Update(ctx, func(tx Tx) error {
			n, err := tx.Node(id)
			if errors.Is(err, ErrNotFound) {
				n, err = &Node{UUID: id, Driver: "fake-hardware"}, nil
			}
			if err != nil {
				return err
			}
			n.ProvisionState, n.LastError = state, lastErr
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	set("deploying", nil)
	set("deploy failed", strp("Agent returned error for deploy step write_image: checksum mismatch"))
	set("deploy failed", strp("Agent returned error for deploy step write_image: checksum mismatch")) // unchanged: no new event
	set("available", nil)                                                                             // cleared: no event
	set("available", strp("Failed to change power state to 'power on' by 'power on'. Error: BMC timeout"))
	h, err := s.NodeHistory(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("history has %d events, want 2: %+v", len(h), h)
	}
	if h[0].EventType != "deploying" || h[0].Severity != "ERROR" || h[0].Conductor != "conductor-1" ||
		!strings.Contains(h[0].Event, "checksum mismatch") || h[0].UUID == "" || h[0].CreatedAt.IsZero() {
		t.Errorf("first event %+v", h[0])
	}
	if h[1].EventType != "monitoring" || h[1].ID <= h[0].ID || h[1].CreatedAt.Before(h[0].CreatedAt) {
		t.Errorf("second event %+v", h[1])
	}
	for i := range MaxHistory + 5 {
		set("clean failed", strp(fmt.Sprintf("clean step %d failed", i)))
	}
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	h, _ = s2.NodeHistory(id)
	if len(h) != MaxHistory || h[len(h)-1].Event != fmt.Sprintf("clean step %d failed", MaxHistory+4) || h[0].Event != "clean step 5 failed" {
		t.Fatalf("after %d more errors and a reopen: %d events, first %q, last %q", MaxHistory+5, len(h), h[0].Event, h[len(h)-1].Event)
	}
	if h[0].EventType != "cleaning" {
		t.Errorf("event type %q, want cleaning", h[0].EventType)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.DeleteNode(id) }); err != nil {
		t.Fatal(err)
	}
	if h, err := s2.NodeHistory(id); err != nil || len(h) != 0 {
		t.Fatalf("history after delete: %d events, %v", len(h), err)
	}
}

func TestHistoryEventType(t *testing.T) {
	tests := []struct{ from, to, want string }{
		{"wait call-back", "deploy failed", "deploying"},
		{"clean wait", "clean failed", "cleaning"},
		{"inspect wait", "inspect failed", "introspection"},
		{"verifying", "enroll", "verify"},
		{"deleting", "error", "unprovision"},
		{"rescue wait", "rescue failed", "rescue"},
		{"active", "active", "monitoring"},
		{"available", "available", "monitoring"},
	}
	for _, tc := range tests {
		if got := HistoryEventType(tc.from, tc.to); got != tc.want {
			t.Errorf("HistoryEventType(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

// Deploy templates: unique names, found by name or UUID, kept across a
// reopen.
func TestDeployTemplates(t *testing.T) { forEachBackend(t, testDeployTemplates) }

func testDeployTemplates(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	d := &DeployTemplate{UUID: "55555555-5555-5555-5555-555555555555", Name: "CUSTOM_A",
		Steps: []map[string]any{{"interface": "deploy", "step": "x", "args": map[string]any{}, "priority": float64(10)}}}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutDeployTemplate(d) }); err != nil {
		t.Fatal(err)
	}
	dup := &DeployTemplate{UUID: "66666666-6666-6666-6666-666666666666", Name: "CUSTOM_A"}
	var de *DuplicateError
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutDeployTemplate(dup) }); !errors.As(err, &de) || de.Field != "name" {
		t.Fatalf("duplicate name: %v", err)
	}
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.DeployTemplate("CUSTOM_A")
	if err != nil || got.UUID != d.UUID || len(got.Steps) != 1 || got.Steps[0]["priority"] != float64(10) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.DeleteDeployTemplate(d.UUID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.DeployTemplate(d.UUID); !errors.Is(err, ErrNotFound) || len(s2.DeployTemplates(nil)) != 0 {
		t.Fatalf("after delete: %v", err)
	}
	// The name is free again.
	if err := s2.Update(ctx, func(tx Tx) error { return tx.PutDeployTemplate(dup) }); err != nil {
		t.Fatal(err)
	}
}

// Runbooks: unique names, found by name or UUID, their fields kept across
// a reopen, the name free again after a delete.
func TestRunbooks(t *testing.T) { forEachBackend(t, testRunbooks) }

func testRunbooks(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	owner := "p1"
	r := &Runbook{UUID: "77777777-7777-7777-7777-777777777777", Name: "CUSTOM_RB", DisableRamdisk: true, Owner: &owner,
		Steps: []map[string]any{{"interface": "power", "step": "wait", "args": map[string]any{"seconds": float64(1)}, "order": float64(1)}}}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutRunbook(r) }); err != nil {
		t.Fatal(err)
	}
	dup := &Runbook{UUID: "88888888-8888-8888-8888-888888888888", Name: "CUSTOM_RB"}
	var de *DuplicateError
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutRunbook(dup) }); !errors.As(err, &de) || de.Field != "name" {
		t.Fatalf("duplicate name: %v", err)
	}
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Runbook("CUSTOM_RB")
	if err != nil || got.UUID != r.UUID || !got.DisableRamdisk || got.Owner == nil || *got.Owner != owner ||
		len(got.Steps) != 1 || got.Steps[0]["order"] != float64(1) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.DeleteRunbook(r.UUID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Runbook(r.UUID); !errors.Is(err, ErrNotFound) || len(s2.Runbooks(nil)) != 0 {
		t.Fatalf("after delete: %v", err)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.PutRunbook(dup) }); err != nil {
		t.Fatal(err)
	}
}

func TestBIOSSettings(t *testing.T) { forEachBackend(t, testBIOSSettings) }

func testBIOSSettings(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	const id = "44444444-4444-4444-4444-444444444444"
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(&Node{UUID: id, Driver: "redfish"}) }); err != nil {
		t.Fatal(err)
	}
	sync := func(settings ...BIOSSetting) [3]int {
		t.Helper()
		var c [3]int
		if err := s.Update(ctx, func(tx Tx) error {
			var err error
			c[0], c[1], c[2], err = tx.SyncBIOSSettings(id, settings)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := sync(BIOSSetting{Name: "NumLock", Value: strp("On")}, BIOSSetting{Name: "ProcCores", Value: strp("8")}); got != [3]int{2, 0, 0} {
		t.Errorf("first sync created/updated/deleted = %v", got)
	}
	first, _ := s.BIOSSettings(id)
	if len(first) != 2 || first[0].Name != "NumLock" || first[0].CreatedAt.IsZero() || first[0].UpdatedAt != nil {
		t.Fatalf("settings %+v", first)
	}
	if got := sync(BIOSSetting{Name: "NumLock", Value: strp("Off")}, BIOSSetting{Name: "ProcCores", Value: strp("8")},
		BIOSSetting{Name: "Turbo", Value: nil}); got != [3]int{1, 1, 0} {
		t.Errorf("second sync = %v", got)
	}
	if got := sync(BIOSSetting{Name: "NumLock", Value: strp("Off")}); got != [3]int{0, 0, 2} {
		t.Errorf("third sync = %v", got)
	}
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.BIOSSettings(id)
	if err != nil || len(got) != 1 || *got[0].Value != "Off" || got[0].UpdatedAt == nil || !got[0].CreatedAt.Equal(first[0].CreatedAt) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := s2.Update(ctx, func(tx Tx) error { return tx.DeleteNode(id) }); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.BIOSSettings(id); err != nil || len(got) != 0 {
		t.Fatalf("settings after the node's deletion: %+v, %v", got, err)
	}
}

func TestFirmwareComponents(t *testing.T) { forEachBackend(t, testFirmwareComponents) }

func testFirmwareComponents(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	const id = "55555555-5555-5555-5555-555555555555"
	sync := func(v map[string]string) {
		t.Helper()
		if err := s.Update(ctx, func(tx Tx) error { return tx.SyncFirmwareComponents(id, v) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(&Node{UUID: id, Driver: "redfish"}) }); err != nil {
		t.Fatal(err)
	}
	sync(map[string]string{"bios": "1.0", "bmc": "5.0"})
	sync(map[string]string{"bios": "1.1"})
	fw, err := s.FirmwareComponents(id)
	if err != nil || len(fw) != 2 {
		t.Fatalf("FirmwareComponents = %+v, %v", fw, err)
	}
	if b := fw[0]; b.Component != "bios" || b.InitialVersion != "1.0" || b.CurrentVersion != "1.1" || b.UpdatedAt == nil {
		t.Errorf("bios after an update: %+v", b)
	}
	if b := fw[1]; b.Component != "bmc" || b.CurrentVersion != "5.0" || b.UpdatedAt != nil {
		t.Errorf("bmc kept as read first: %+v", b)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.DeleteNode(id) }); err != nil {
		t.Fatal(err)
	}
	if fw, _ := s.FirmwareComponents(id); len(fw) != 0 {
		t.Errorf("firmware after the node's deletion: %+v", fw)
	}
}
