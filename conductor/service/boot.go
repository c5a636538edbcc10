package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/vmedia"
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
	// mediaBoot names the boot interfaces that boot the ramdisk from
	// virtual media.
	mediaBoot map[string]bool
	// deployImages downloads deploy images named by URL for them.
	deployImages *deployImages
	// instanceBoot serves ramdisk deploys' instance images (nil: the
	// iPXE script gets the user's URLs).
	instanceBoot *instanceBoot
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
	if p.PXEEnabled {
		return true, nil
	}
	// A node that boots its ramdisk from virtual media gets addresses for
	// its agent on every port (inspection without BOOTIF leaves them all
	// pxe_enabled false); the agent's requests are not network boots, so
	// they get no boot file.
	n, err := b.st.Node(p.NodeUUID)
	if err != nil {
		return false, nil
	}
	return b.mediaBoot[n.Interfaces["boot"]], nil
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
func (b *bootHosts) BootFor(ctx context.Context, mac net.HardwareAddr) (ipxe.Action, error) {
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
		kk, rk := "deploy_kernel", "deploy_ramdisk"
		if st == sm.Rescuing || st == sm.RescueWait {
			kk, rk = "rescue_kernel", "rescue_ramdisk" // as Ironic's rescue mode
		}
		k, _ := n.DriverInfo[kk].(string)
		r, _ := n.DriverInfo[rk].(string)
		if k == "" || r == "" {
			return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID,
				Message: "ferric: node " + n.UUID + " has no " + kk + "/" + rk + " in driver_info"}, nil
		}
		rd := b.ramdisk(n.DriverInfo, st == sm.Inspecting || st == sm.InspectWait)
		rd.KernelURL, rd.InitrdURL = b.fileURL(k), b.fileURL(r)
		return ipxe.Action{Kind: ipxe.ActionDeploy, Node: n.UUID, Ramdisk: rd}, nil
	case st == sm.Active && n.DriverInternalInfo[driver.InstanceBootKey] != nil && !b.mediaBoot[fmt.Sprint(n.DriverInternalInfo[driver.InstanceBootKey])]:
		// A ramdisk deploy's instance whose boot the network boot set up.
		return b.instanceAction(ctx, n), nil
	case st == sm.Active:
		return ipxe.Action{Kind: ipxe.ActionLocalDisk, Node: n.UUID}, nil
	}
	return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID,
		Message: fmt.Sprintf("ferric: node %s is %s; nothing to boot from the network", n.UUID, st)}, nil
}

// ramdisk is what every boot of the deploy ramdisk passes its kernel: the
// API URL, the inspection callback when inspecting, the console, the
// conductor's and the node's extra parameters.
func (b *bootHosts) ramdisk(driverInfo map[string]any, inspection bool) ipxe.Ramdisk {
	rd := ipxe.Ramdisk{APIURL: b.publicURL, Console: []string{"ttyS0,115200n8"}, ExtraArgs: slices.Clone(b.extraArgs)}
	if inspection {
		rd.InspectionCallbackURL = strings.TrimRight(b.publicURL, "/") + "/v1/continue_inspection"
	}
	if extra, _ := driverInfo["kernel_append_params"].(string); extra != "" {
		for _, f := range strings.Fields(extra) {
			if prm, err := ipxe.ParseParam(f); err == nil {
				rd.ExtraArgs = append(rd.ExtraArgs, prm)
			}
		}
	}
	return rd
}

// vmediaRamdisk is the ramdisk a virtual media boot puts on its ISO: the
// deploy kernel and initramfs, files in the boot directory or http(s)
// URLs the conductor downloads (b.deployImages), and the parameters of the
// network boot (without BOOTIF: the agent looks up with all its NICs) and
// boot_method=vmedia.
func (b *bootHosts) vmediaRamdisk(bootDir string) func(n *driver.Node, inspection bool) (vmedia.Ramdisk, error) {
	return func(n *driver.Node, inspection bool) (vmedia.Ramdisk, error) {
		var files [2]string
		for i, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
			v, _ := n.DriverInfo[k].(string)
			if isFetchable(v) && b.deployImages != nil {
				ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
				p, err := b.deployImages.local(ctx, v)
				cancel()
				if err != nil {
					return vmedia.Ramdisk{}, fmt.Errorf("driver_info %s: %w", k, err)
				}
				files[i] = p
				continue
			}
			if strings.Contains(v, "://") {
				return vmedia.Ramdisk{}, fmt.Errorf("driver_info %s %q: virtual media boot takes an http(s) URL or a file of the conductor's boot directory", k, v)
			}
			clean := filepath.Clean("/" + v)
			if v == "" || clean == "/" {
				return vmedia.Ramdisk{}, fmt.Errorf("driver_info lacks %s", k)
			}
			files[i] = filepath.Join(bootDir, clean)
		}
		ps, err := ipxe.KernelArgs(nil, b.ramdisk(n.DriverInfo, inspection))
		if err != nil {
			return vmedia.Ramdisk{}, err
		}
		// As Ironic does: the agent learns it booted from virtual media
		// (it then waits for the CD drive holding the node's network
		// data); an operator's own boot_method gives way.
		ps = slices.DeleteFunc(ps, func(p ipxe.Param) bool { return p.Key == "boot_method" })
		ps = append(ps, ipxe.Param{Key: "boot_method", Value: "vmedia"})
		return vmedia.Ramdisk{Kernel: files[0], Initrd: files[1], Params: ipxe.JoinArgs(ps)}, nil
	}
}

// instanceAction is the network boot of a ramdisk deploy's instance (its
// boot set up by the network boot interface): its boot ISO, or its kernel
// and ramdisk with instance_info kernel_append_params, from the copies
// the conductor staged (b.instanceBoot; staged now when this conductor
// has none, e.g. another one prepared the deploy).
func (b *bootHosts) instanceAction(ctx context.Context, n *store.Node) ipxe.Action {
	dn := &driver.Node{UUID: n.UUID, InstanceInfo: n.InstanceInfo}
	im, err := driver.ReadInstanceImage(dn)
	if err != nil {
		return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID, Message: "ferric: node " + n.UUID + ": " + err.Error()}
	}
	in := ipxe.Instance{ISOURL: im.BootISO, KernelURL: im.Kernel, InitrdURL: im.Ramdisk}
	if b.instanceBoot != nil {
		staged, ok := b.instanceBoot.instance(n.UUID)
		if !ok {
			if _, err := b.instanceBoot.PrepareInstance(ctx, dn); err != nil {
				return ipxe.Action{Kind: ipxe.ActionUnknown, Node: n.UUID, Message: "ferric: node " + n.UUID + ": " + err.Error()}
			}
			staged, _ = b.instanceBoot.instance(n.UUID)
		}
		in = staged
	}
	for _, f := range strings.Fields(im.Params) {
		if p, err := ipxe.ParseParam(f); err == nil {
			in.Args = append(in.Args, p)
		}
	}
	return ipxe.Action{Kind: ipxe.ActionInstance, Node: n.UUID, Instance: in}
}
