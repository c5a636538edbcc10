package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/ipxe"
)

// bootHosts answers the PXE services' questions from the store: which MACs
// are enrolled, and what each should boot next (from its node's state).
type bootHosts struct {
	st        store.Store
	publicURL string // the API URL as machines reach it
	extraArgs []ipxe.Param
}

// PXEEnabled reports whether mac is a pxe_enabled port of a node.
func (b *bootHosts) PXEEnabled(_ context.Context, mac net.HardwareAddr) (bool, error) {
	p, err := b.st.PortByAddress(strings.ToLower(mac.String()))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.PXEEnabled, nil
}

// ramdiskStates are the states in which a node boots the agent ramdisk.
var ramdiskStates = map[sm.State]bool{sm.Deploying: true, sm.DeployWait: true, sm.Cleaning: true, sm.CleanWait: true,
	sm.Inspecting: true, sm.InspectWait: true, sm.Rescuing: true, sm.RescueWait: true, sm.Servicing: true, sm.ServiceWait: true}

// fileURL turns driver_info deploy_kernel/deploy_ramdisk into a URL: an
// http(s) URL is used as is, anything else names a file in the boot dir.
func (b *bootHosts) fileURL(v string) string {
	if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
		return v
	}
	return strings.TrimRight(b.publicURL, "/") + "/boot/files/" + strings.TrimLeft(v, "/")
}

// BootFor decides what the machine with mac boots.
func (b *bootHosts) BootFor(_ context.Context, mac net.HardwareAddr) (ipxe.Action, error) {
	m, _ := ironichttp.NormalizeMAC(mac.String())
	p, err := b.st.PortByAddress(m)
	if err != nil {
		return ipxe.Action{Kind: ipxe.ActionUnknown, Message: "ferric: no node has a port with MAC " + m}, nil
	}
	n, err := b.st.Node(p.NodeUUID)
	if err != nil {
		return ipxe.Action{}, fmt.Errorf("boot: node of port %s: %w", m, err)
	}
	st := sm.State(n.ProvisionState)
	switch {
	case ramdiskStates[st]:
		k, _ := n.DriverInfo["deploy_kernel"].(string)
		r, _ := n.DriverInfo["deploy_ramdisk"].(string)
		if k == "" || r == "" {
			return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID,
				Message: "ferric: node " + n.UUID + " has no deploy_kernel/deploy_ramdisk in driver_info"}, nil
		}
		rd := ipxe.Ramdisk{KernelURL: b.fileURL(k), InitrdURL: b.fileURL(r), APIURL: b.publicURL,
			Console: []string{"ttyS0,115200n8"}, ExtraArgs: b.extraArgs}
		if st == sm.Inspecting || st == sm.InspectWait {
			rd.InspectionCallbackURL = strings.TrimRight(b.publicURL, "/") + "/v1/continue_inspection"
		}
		if extra, _ := n.DriverInfo["kernel_append_params"].(string); extra != "" {
			for _, f := range strings.Fields(extra) {
				if prm, err := ipxe.ParseParam(f); err == nil {
					rd.ExtraArgs = append(rd.ExtraArgs, prm)
				}
			}
		}
		return ipxe.Action{Kind: ipxe.ActionDeploy, Node: n.UUID, Ramdisk: rd}, nil
	case st == sm.Active:
		return ipxe.Action{Kind: ipxe.ActionLocalDisk, Node: n.UUID}, nil
	}
	return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID,
		Message: fmt.Sprintf("ferric: node %s is %s; nothing to boot from the network", n.UUID, st)}, nil
}
