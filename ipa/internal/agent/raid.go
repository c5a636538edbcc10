package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ferric-metal/ferric/ipa/protocol"
	"github.com/ferric-metal/ferric/ipa/swraid"
)

// swraid returns the software RAID manager (Config.SoftwareRAID, or the
// machine's md devices through mdadm).
func (a *Agent) swraid() *swraid.Manager {
	if a.cfg.SoftwareRAID != nil {
		return a.cfg.SoftwareRAID
	}
	return &swraid.Manager{Open: a.cfg.OpenDisk, Log: a.log}
}

// raidStep runs the raid interface's steps as IPA's generic hardware
// manager does: create_configuration builds the node's target_raid_config
// when it asks for software RAID (and does nothing otherwise),
// apply_configuration builds its raid_config argument (deleting what is
// there first unless delete_existing is false), delete_configuration
// removes every md device. The result is the configuration built (the
// conductor records it as the node's raid_config).
func (a *Agent) raidStep(ctx context.Context, st protocol.Step, n nodeView) (any, error) {
	m := a.swraid()
	if st.Step == "delete_configuration" {
		return nil, m.Delete(ctx)
	}
	cfg := n.TargetRAIDConfig
	if st.Step == "apply_configuration" {
		var args struct {
			RAIDConfig     map[string]any `json:"raid_config"`
			DeleteExisting *bool          `json:"delete_existing"`
		}
		b, _ := json.Marshal(st.Args)
		if err := json.Unmarshal(b, &args); err != nil || args.RAIDConfig == nil {
			return nil, errors.New("apply_configuration needs the argument raid_config, a RAID configuration")
		}
		cfg = args.RAIDConfig
		if err := swraid.Validate(n.UUID, cfg, 0); err != nil {
			return nil, err
		}
		if args.DeleteExisting == nil || *args.DeleteExisting {
			if err := m.Delete(ctx); err != nil {
				return nil, err
			}
		}
	}
	if len(cfg) == 0 {
		a.log.Info("raid: no target_raid_config")
		return map[string]any{}, nil
	}
	if !swraid.IsSoftware(cfg) {
		a.log.Info("raid: no software RAID in the configuration")
		return map[string]any{}, nil
	}
	inv, err := a.cfg.Inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return m.Create(ctx, n.UUID, cfg, inv.Disks, a.uefi())
}

// uefi reports whether the machine runs UEFI firmware.
func (a *Agent) uefi() bool {
	if a.cfg.EFIVarsDir != "" {
		return true
	}
	_, err := os.Stat("/sys/firmware/efi")
	return err == nil
}

// withArrays returns the disks the agent may write an image to or erase:
// the md arrays take the place of the disks holding their members, as in
// IPA, where a software RAID device is a block device of its own and its
// holder disks are not erased or chosen as root device.
func (a *Agent) withArrays(disks []protocol.Disk) []protocol.Disk {
	arrays, err := a.swraid().Arrays()
	if err != nil || len(arrays) == 0 {
		return disks
	}
	holders := swraid.Holders(arrays)
	var out []protocol.Disk
	for _, d := range disks {
		if !holders[d.Name] {
			out = append(out, d)
		}
	}
	for _, arr := range arrays {
		if arr.Size > 0 && len(arr.Members) > 0 {
			out = append(out, protocol.Disk{Name: arr.Name, Model: "software RAID " + arr.Level, Size: arr.Size})
		}
	}
	return out
}

// installRAIDBootloader makes every member disk of the array the image
// went to boot it: an EFI system partition on each (mirrored) and a boot
// entry per disk under UEFI, the image's boot code on each for BIOS.
func (a *Agent) installRAIDBootloader(ctx context.Context, arr swraid.Array, bootMode string) error {
	if bootMode == "uefi" {
		if err := a.swraid().InstallUEFIBoot(ctx, arr, a.cfg.EFIVarsDir); err != nil {
			return err
		}
		a.log.Info("install_bootloader: EFI system partition on every software RAID member", "device", arr.Name, "members", len(arr.Members))
		return nil
	}
	if err := a.swraid().InstallBIOSBoot(arr); err != nil {
		return err
	}
	a.log.Info("install_bootloader: boot code on every software RAID member", "device", arr.Name, "members", len(arr.Members))
	return nil
}
