package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
	"github.com/ferric-metal/ferric/ipa/swraid"
)

// Software RAID through the agent raid interface, as Ironic's AgentRAID:
// the agent runs raid.create_configuration and raid.delete_configuration
// (clean steps) and raid.apply_configuration (deploy step) itself; the
// conductor checks a target_raid_config asking for software RAID when it
// is set (the agent's limits: RAID-1 first, levels 0/1/1+0, one or two
// logical disks), refuses create_configuration without one before the
// clean starts, and records what the agent built as the node's raid_config
// (delete_configuration empties it). A deploy onto software RAID asks the
// agent for install_bootloader whatever the boot mode, so that every
// member disk boots.

// checkSoftwareRAID checks cfg when the node's raid interface is the
// agent's and cfg asks for software RAID.
func (m *Manager) checkSoftwareRAID(n *store.Node, cfg map[string]any) error {
	if m.raidController(n) != nil || !m.agentRAID(n) || !swraid.IsSoftware(cfg) {
		return nil
	}
	if err := swraid.Validate(n.UUID, cfg, 0); err != nil {
		return userErr(ErrInvalidInput, "%s", err.Error())
	}
	return nil
}

// checkAgentRAIDSteps refuses, before a clean starts, an agent
// create_configuration on a node without target_raid_config (Ironic's
// message), and checks apply_configuration's raid_config.
func (m *Manager) checkAgentRAIDSteps(n *store.Node, steps []map[string]any) error {
	if m.raidController(n) != nil || !m.agentRAID(n) {
		return nil
	}
	for _, st := range steps {
		if st["interface"] != "raid" {
			continue
		}
		switch st["step"] {
		case "create_configuration":
			if len(n.TargetRAIDConfig) == 0 {
				return userErr(ErrInvalidInput, "Node %s has no target RAID configuration.", n.UUID)
			}
			// With the disks inspection found, a config the machine cannot
			// hold (a mirror on one disk) is refused now rather than by
			// the agent.
			if cfg := map[string]any(n.TargetRAIDConfig); swraid.IsSoftware(cfg) {
				if err := swraid.Validate(n.UUID, cfg, inspectedDisks(n)); err != nil {
					return userErr(ErrInvalidInput, "%s", err.Error())
				}
			}
		case "apply_configuration":
			args, _ := st["args"].(map[string]any)
			cfg, ok := args["raid_config"].(map[string]any)
			if !ok {
				return userErr(ErrInvalidInput, "raid.apply_configuration needs the argument raid_config, a RAID configuration")
			}
			if swraid.IsSoftware(cfg) {
				if err := swraid.Validate(n.UUID, cfg, inspectedDisks(n)); err != nil {
					return userErr(ErrInvalidInput, "%s", err.Error())
				}
			}
		}
	}
	return nil
}

// inspectedDisks is the number of disks inspection found (0: unknown).
func inspectedDisks(n *store.Node) int {
	var inv protocol.Inventory
	if len(n.Inventory) == 0 || json.Unmarshal(n.Inventory, &inv) != nil {
		return 0
	}
	return len(inv.Disks)
}

// afterAgentRAIDStep records the result of an agent raid step as the
// node's raid_config (Ironic's update_raid_info: the configuration with
// last_updated, and the root volume's size as properties.local_gb).
func (m *Manager) afterAgentRAIDStep(ctx context.Context, uuid string, st map[string]any, res *protocol.CommandResult) error {
	if st["interface"] != "raid" {
		return nil
	}
	var cfg map[string]any
	switch st["step"] {
	case "delete_configuration":
		cfg = map[string]any{}
	case "create_configuration", "apply_configuration":
		var r protocol.ExecuteStepResult
		if res == nil || json.Unmarshal(res.CommandResult, &r) != nil || len(r.Result) == 0 || json.Unmarshal(r.Result, &cfg) != nil || cfg == nil {
			//lint:ignore ST1005 Ironic's message
			return fmt.Errorf("Agent ramdisk didn't return a proper command result while cleaning %s", uuid)
		}
		if len(cfg) > 0 {
			cfg["last_updated"] = time.Now().UTC().Format("2006-01-02 15:04:05.000000")
		}
	default:
		return nil
	}
	return m.update(ctx, uuid, func(n *store.Node) error {
		n.RAIDConfig = cfg
		lds, _ := cfg["logical_disks"].([]any)
		for _, x := range lds {
			ld, _ := x.(map[string]any)
			if size, ok := ld["size_gb"].(float64); ok && ld["is_root_volume"] == true {
				if n.Properties == nil {
					n.Properties = store.Object{}
				}
				n.Properties["local_gb"] = int64(size)
			}
		}
		return nil
	})
}

// softwareRAIDTarget reports whether the node's target_raid_config asks
// for software RAID (Ironic then installs a bootloader on whole-disk
// images too).
func (m *Manager) softwareRAIDTarget(n *store.Node) bool {
	return m.agentRAID(n) && swraid.IsSoftware(n.TargetRAIDConfig)
}

// agentRAID reports whether node n's raid interface is built by the agent.
func (m *Manager) agentRAID(n *store.Node) bool {
	_, ok := capability[agentRAIDBuilder](m, n, "raid")
	return ok
}

// agentRAIDBuilder is a raid interface whose volumes the ramdisk's agent
// builds (the agent raid interface).
type agentRAIDBuilder interface{ BuildsWithAgent() }

// installRAIDBootloader asks the agent to make every member disk of the
// root array boot (image.install_bootloader with the node's boot mode).
func (m *Manager) installRAIDBootloader(ctx context.Context, uuid string, n *store.Node) error {
	mode := "bios"
	if bootsUEFI(n) {
		mode = "uefi"
	}
	var pu protocol.PartitionUUIDs
	res, err := m.runAgent(ctx, uuid, "standby.get_partition_uuids", map[string]any{})
	if err == nil && len(res.CommandResult) > 0 {
		err = json.Unmarshal(res.CommandResult, &pu)
	}
	if err != nil {
		return fmt.Errorf("deploy: partition UUIDs from the agent: %w", err)
	}
	params := protocol.InstallBootloaderParams{RootUUID: pu.RootUUID, TargetBootMode: mode}
	if pu.EFISystemPartitionUUID != "" {
		params.EFISystemPartUUID = &pu.EFISystemPartitionUUID
	}
	if _, err := m.runAgent(ctx, uuid, "image.install_bootloader", params); err != nil {
		//lint:ignore ST1005 Ironic's message
		return fmt.Errorf("Failed to install a bootloader when deploying node %s. Error: %w", uuid, err)
	}
	m.log.Info("manager: bootloader installed on the software RAID members", "node", uuid, "boot_mode", mode)
	return nil
}
