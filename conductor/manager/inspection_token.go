package manager

import (
	"context"
	"encoding/json"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// ContinueInspectionToken is continue_inspection as Ironic serves it from
// API 1.84: the ramdisk may name its node (nodeUUID, checked against the
// MACs it reports), and before the data is processed the node is given an
// agent token as a lookup would (Ironic's get_node_with_token): token is
// the new one, or "" when the node already had one (the API masks it).
// The node returned is the one the token was added to, as Ironic answers
// it (before processing).
func (m *Manager) ContinueInspectionToken(ctx context.Context, body []byte, nodeUUID string) (*store.Node, string, error) {
	if m.cfg.Inspect == nil {
		return nil, "", userErr(ErrInvalidInput, "Inspection is not enabled on this conductor.")
	}
	uuid := nodeUUID
	if uuid == "" {
		var err error
		if uuid, err = m.cfg.Inspect.Match(ctx, body); err != nil {
			return nil, "", userErr(ErrNotFound, "%v", err)
		}
	} else if err := m.checkInspectedNode(uuid, body); err != nil {
		return nil, "", err
	}
	n, token, err := m.issueToken(ctx, uuid)
	if err != nil {
		return nil, "", err
	}
	if _, err := m.continueMatched(ctx, uuid, body); err != nil {
		return nil, "", err
	}
	m.log.Info("manager: inspection data accepted", "node", uuid, "token_issued", token != "")
	return n, token, nil
}

// checkInspectedNode checks a node named by the ramdisk as Ironic's
// inspection lookup does: the data has an inventory with interfaces, each
// with a MAC (400 otherwise), the node exists, waits for inspection, and
// no other node's port has the MACs the data reports. Every failure of
// the lookup is the same not found, so that the answer discloses nothing.
func (m *Manager) checkInspectedNode(uuid string, body []byte) error {
	var d struct {
		Inventory *struct {
			Interfaces []struct {
				Name       string `json:"name"`
				MACAddress string `json:"mac_address"`
			} `json:"interfaces"`
		} `json:"inventory"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return userErr(ErrInvalidInput, "Invalid inspection data: %v", err)
	}
	if d.Inventory == nil || len(d.Inventory.Interfaces) == 0 {
		return userErr(ErrInvalidInput, "Invalid inspection data: inventory.interfaces must list at least one interface")
	}
	var macs []string
	for i, iface := range d.Inventory.Interfaces {
		if iface.MACAddress == "" {
			return userErr(ErrInvalidInput, "Invalid inspection data: inventory.interfaces[%d] (%q) has no mac_address", i, iface.Name)
		}
		if mac, ok := ironichttp.NormalizeMAC(iface.MACAddress); ok {
			macs = append(macs, mac)
		}
	}
	notFound := userErr(ErrNotFound, "Resource could not be found.")
	n, err := m.st.Node(uuid)
	if err != nil || sm.State(n.ProvisionState) != sm.InspectWait {
		return notFound
	}
	for _, mac := range macs {
		if p, err := m.st.PortByAddress(mac); err == nil && p.NodeUUID != uuid {
			m.log.Error("manager: inspection lookup conflict", "node", uuid, "mac", mac, "port_node", p.NodeUUID)
			return notFound
		}
	}
	return nil
}
