// Package process connects inspection processing to the conductor's store:
// Processor implements the conductor manager's InspectProcessor (find the
// node an inventory belongs to, then run the hooks and rules and persist
// the Result inside the manager's transaction), Nodes implements
// inspector.Nodes over the store, and RuleStore keeps inspection rules as
// store records.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector"
	"github.com/ferric-metal/ferric/inspector/inventory"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// Errors. Match them with errors.Is.
var (
	// ErrEnrolled: the machine was unknown and has been enrolled as a new
	// node (returned by Match when Enroll.ReturnUUID is off).
	ErrEnrolled = errors.New("unknown machine enrolled as a new node")
	// ErrProtectedField: an inspection rule tried to change a field that
	// only the conductor may change (uuid, provision_state, ...).
	ErrProtectedField = errors.New("inspection rules may not change this field")
)

// Provision states a node must be in for inspection data to match it.
var inspectStates = []string{"inspect wait", "inspecting"}

// Config configures a Processor.
type Config struct {
	Store store.Store
	// Rules are the inspection rules to run; nil runs none.
	Rules rules.Store
	// Processing holds the hook settings (add_ports, local_gb spacing).
	Processing inspector.Config
	// Enroll, when set, enrolls machines that match no node.
	Enroll *Enroll
	Log    *slog.Logger
}

// Enroll configures auto-discovery ([auto_discovery] in Ironic).
type Enroll struct {
	// Driver of the new nodes (default "ipmi"); its default interfaces
	// are used.
	Driver string
	// Drivers are the hardware types Driver is looked up in (default:
	// hardware.New).
	Drivers *driver.Registry
	// DriverInfo is copied into new nodes; the machine's BMC address is
	// added as ipmi_address / redfish_address when the driver uses them.
	DriverInfo map[string]any
	// ReturnUUID makes Match return the new node's UUID. Leave it off
	// unless the caller accepts nodes in enroll state (the conductor's
	// ContinueInspection only accepts nodes being inspected); off, Match
	// answers an error wrapping ErrEnrolled that names the node.
	ReturnUUID bool
}

// Processor implements manager.InspectProcessor over a store.Store.
type Processor struct {
	cfg   Config
	st    store.Store
	log   *slog.Logger
	nodes Nodes
}

// New returns a Processor.
func New(cfg Config) *Processor {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Processor{cfg: cfg, st: cfg.Store, log: cfg.Log, nodes: Nodes{Store: cfg.Store}}
}

// Match finds the node being inspected that the posted data belongs to,
// by BMC address and MACs. With Enroll set, an unknown machine (none of
// whose MACs belongs to any node) becomes a new node in enroll state,
// processed like an inspected one, with plugin_data.auto_discovered set.
func (p *Processor) Match(ctx context.Context, body []byte) (string, error) {
	d, err := inventory.Parse(body)
	if err != nil {
		return "", err
	}
	id, err := inspector.Match(ctx, p.nodes, &d.Inventory)
	if err == nil || !errors.Is(err, inspector.ErrNodeNotFound) || p.cfg.Enroll == nil {
		return id, err
	}
	for _, mac := range d.Inventory.MACs() {
		if port, perr := p.st.PortByAddress(mac); perr == nil {
			state := ""
			if n, nerr := p.st.Node(port.NodeUUID); nerr == nil {
				state = n.ProvisionState
			}
			return "", fmt.Errorf("inspector: MAC %s belongs to node %s in state %q, which is not being inspected: %w", mac, port.NodeUUID, state, inspector.ErrNodeNotFound)
		}
	}
	id, err = p.enroll(ctx, d)
	if err != nil {
		return "", err
	}
	if !p.cfg.Enroll.ReturnUUID {
		return "", fmt.Errorf("inspector: node %s: %w", id, ErrEnrolled)
	}
	return id, nil
}

// Apply runs the processing hooks and the rules for node n over the posted
// data and changes n and its ports inside tx: properties merged, missing
// ports created (pxe_enabled updated on existing ones), the rules' patch
// and traits applied, inventory and plugin data set. n is changed in place
// and not put: the caller puts it. It answers the processing error (ramdisk
// error, no valid interfaces, bad root device hints, a failing rule) when
// inspection must fail; then nothing should be written.
func (p *Processor) Apply(ctx context.Context, tx store.Tx, n *store.Node, body []byte) error {
	d, err := inventory.Parse(body)
	if err != nil {
		return err
	}
	return p.apply(ctx, tx, n, d)
}

func (p *Processor) apply(ctx context.Context, tx store.Tx, n *store.Node, d *inventory.Data) error {
	var rs []rules.Rule
	if p.cfg.Rules != nil {
		var err error
		if rs, err = p.cfg.Rules.List(ctx); err != nil {
			return fmt.Errorf("inspector: loading inspection rules: %w", err)
		}
	}
	fields, err := nodeFields(n)
	if err != nil {
		return err
	}
	res := inspector.Process(d, inspector.Node{UUID: n.UUID, Fields: fields, Traits: slices.Clone(n.Traits)}, rs, p.cfg.Processing)
	for _, l := range res.Logs {
		lvl := slog.LevelInfo
		switch strings.ToLower(l.Level) {
		case "debug":
			lvl = slog.LevelDebug
		case "warning":
			lvl = slog.LevelWarn
		case "error", "critical":
			lvl = slog.LevelError
		}
		p.log.Log(ctx, lvl, "inspector: rule: "+l.Msg, "node", n.UUID, "rule", l.Rule)
	}
	if res.Err != nil {
		return res.Err
	}
	if n.Properties == nil {
		n.Properties = store.Object{}
	}
	for k, v := range res.Properties {
		n.Properties[k] = v
	}
	if err := p.ports(tx, n, res.Ports); err != nil {
		return err
	}
	if len(res.Patch) > 0 {
		if err := patchNode(n, res.Patch); err != nil {
			return fmt.Errorf("inspector: node %s: %w", n.UUID, err)
		}
	}
	traits := slices.DeleteFunc(slices.Clone(n.Traits), func(t string) bool { return slices.Contains(res.RemoveTraits, t) })
	for _, t := range res.AddTraits {
		if !slices.Contains(traits, t) {
			traits = append(traits, t)
		}
	}
	n.Traits = traits
	if n.Traits == nil {
		n.Traits = []string{}
	}
	inv, err := json.Marshal(d.Raw)
	if err != nil {
		return err
	}
	pd, err := json.Marshal(res.PluginData)
	if err != nil {
		return err
	}
	n.Inventory, n.PluginData = inv, pd
	p.log.Info("inspector: processed inspection data", "node", n.UUID, "properties", res.Properties,
		"ports", len(res.Ports), "rules_patch", len(res.Patch))
	return nil
}

// ports creates the ports the node lacks and keeps pxe_enabled of its
// existing ones in line with the inventory. A MAC already used by another
// node's port is left alone (logged), as Ironic does.
func (p *Processor) ports(tx store.Tx, n *store.Node, want []inspector.Port) error {
	for _, wp := range want {
		ex, err := p.st.PortByAddress(wp.Address)
		switch {
		case err == nil && ex.NodeUUID != n.UUID:
			p.log.Warn("inspector: port already belongs to another node", "node", n.UUID, "mac", wp.Address, "owner", ex.NodeUUID)
		case err == nil:
			if ex.PXEEnabled == wp.PXEEnabled {
				continue
			}
			cur, err := tx.Port(ex.UUID)
			if err != nil {
				return fmt.Errorf("inspector: port %s: %w", ex.UUID, err)
			}
			cur.PXEEnabled = wp.PXEEnabled
			if err := tx.PutPort(cur); err != nil {
				return fmt.Errorf("inspector: port %s: %w", ex.UUID, err)
			}
		case errors.Is(err, store.ErrNotFound):
			np := &store.Port{UUID: uuid.NewString(), NodeUUID: n.UUID, Address: wp.Address, PXEEnabled: wp.PXEEnabled,
				LocalLinkConnection: store.Object{}, InternalInfo: store.Object{}, Extra: store.Object{}}
			if err := tx.PutPort(np); err != nil {
				if errors.Is(err, store.ErrDuplicate) {
					p.log.Warn("inspector: port already exists", "node", n.UUID, "mac", wp.Address)
					continue
				}
				return fmt.Errorf("inspector: creating port %s for node %s: %w", wp.Address, n.UUID, err)
			}
			p.log.Info("inspector: created port", "node", n.UUID, "mac", wp.Address, "pxe_enabled", wp.PXEEnabled)
		default:
			return err
		}
	}
	return nil
}

// nodeFields is the node as rules see it: its JSON without the
// bookkeeping and the inspection data.
func nodeFields(n *store.Node) (map[string]any, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"id", "revision", "inventory", "plugin_data"} {
		delete(m, k)
	}
	return m, nil
}

// protected lists the top-level node fields rules may not change.
var protected = []string{"id", "revision", "uuid", "provision_state", "target_provision_state", "provision_updated_at",
	"reservation", "power_state", "target_power_state", "created_at", "updated_at", "inventory", "plugin_data",
	"inspection_started_at", "inspection_finished_at", "allocation_uuid", "instance_uuid", "driver_internal_info",
	"traits", "interfaces", "vifs"}

func patchNode(n *store.Node, ops []rules.PatchOp) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	jops := make([]ironichttp.Op, 0, len(ops))
	for _, op := range ops {
		parts := ironichttp.SplitPointer(op.Path)
		if len(parts) > 0 && slices.Contains(protected, parts[0]) {
			return fmt.Errorf("%w: %s", ErrProtectedField, op.Path)
		}
		jops = append(jops, ironichttp.Op{Op: op.Op, Path: op.Path, Value: op.Value})
	}
	if _, err := ironichttp.Apply(doc, jops); err != nil {
		return err
	}
	b, err = json.Marshal(doc)
	if err != nil {
		return err
	}
	var out store.Node
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("rule patch gives an invalid node: %w", err)
	}
	*n = out
	return nil
}

// enroll creates a node for an unknown machine and processes its data.
func (p *Processor) enroll(ctx context.Context, d *inventory.Data) (string, error) {
	e := p.cfg.Enroll
	drv := e.Driver
	if drv == "" {
		drv = "ipmi"
	}
	reg := e.Drivers
	if reg == nil {
		reg = hardware.New(hardware.Config{Log: p.log})
	}
	hw := reg.Lookup(drv)
	if hw == nil {
		return "", fmt.Errorf("inspector: auto-discovery driver %q is not a known hardware type", drv)
	}
	n := &store.Node{UUID: uuid.NewString(), Driver: drv, DriverInfo: store.Object{}, DriverInternalInfo: store.Object{},
		Properties: store.Object{}, Extra: store.Object{}, InstanceInfo: store.Object{}, NetworkData: store.Object{},
		Traits: []string{}, Interfaces: map[string]string{}, ProvisionState: "enroll"}
	n.Interfaces = hw.Defaults()
	for k, v := range e.DriverInfo {
		n.DriverInfo[k] = v
	}
	if addrs := d.Inventory.BMCAddresses(); len(addrs) > 0 {
		for _, key := range []string{"ipmi_address", "redfish_address"} {
			if _, ok := hw.Properties[key]; ok {
				if _, set := n.DriverInfo[key]; !set {
					n.DriverInfo[key] = addrs[0]
				}
			}
		}
	}
	d.PluginData["auto_discovered"] = true
	now := time.Now().UTC()
	n.InspectionStartedAt, n.InspectionFinishedAt, n.ProvisionUpdatedAt = &now, &now, &now
	err := p.st.Update(ctx, func(tx store.Tx) error {
		cp := *n
		if err := p.apply(ctx, tx, &cp, d); err != nil {
			return err
		}
		return tx.PutNode(&cp)
	})
	if err != nil {
		return "", fmt.Errorf("inspector: enrolling unknown machine (MACs %v): %w", d.Inventory.MACs(), err)
	}
	p.log.Info("inspector: enrolled unknown machine", "node", n.UUID, "driver", drv, "macs", d.Inventory.MACs())
	return n.UUID, nil
}

// Nodes implements inspector.Nodes over a store: it finds nodes in
// inspect wait or inspecting.
type Nodes struct {
	Store store.Store
}

func inspecting(n *store.Node) bool { return slices.Contains(inspectStates, n.ProvisionState) }

// FindByBMCAddress returns the nodes being inspected whose driver_info
// *_address (ipmi_address, redfish_address URL host, ...) is one of
// addresses. IP addresses compare by value; names case-insensitively.
func (s Nodes) FindByBMCAddress(ctx context.Context, addresses []string) ([]string, error) {
	var want []string
	for _, a := range addresses {
		want = append(want, normHost(a))
	}
	var out []string
	for _, n := range s.Store.Nodes(inspecting) {
		for k, v := range n.DriverInfo {
			str, ok := v.(string)
			if !ok || !strings.HasSuffix(k, "_address") {
				continue
			}
			if slices.Contains(want, normHost(bmcHost(str))) {
				out = append(out, n.UUID)
				break
			}
		}
	}
	return out, nil
}

// FindByMACs returns the nodes being inspected that own a port with one of
// macs.
func (s Nodes) FindByMACs(ctx context.Context, macs []string) ([]string, error) {
	var out []string
	for _, mac := range macs {
		p, err := s.Store.PortByAddress(mac)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return nil, err
		}
		if n, err := s.Store.Node(p.NodeUUID); err == nil && inspecting(n) && !slices.Contains(out, n.UUID) {
			out = append(out, n.UUID)
		}
	}
	return out, nil
}

// bmcHost extracts the host from a BMC address: a URL
// (https://10.0.0.1:8000/redfish/v1), host:port, [v6] or a bare host.
func bmcHost(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.Trim(s, "[]")
}

func normHost(s string) string {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return strings.ToLower(s)
}
