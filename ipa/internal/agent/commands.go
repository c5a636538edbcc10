package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/efiboot"
	"github.com/ferric-metal/ferric/ipa/internal/image"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

type handler struct {
	async    bool
	validate func(params json.RawMessage) error
	fn       func(ctx context.Context, params json.RawMessage, c *command) (any, error)
	// after runs once the result is recorded (power off, lockdown).
	after func(ctx context.Context, gen int)
}

// ManagerName and ManagerVersion identify our steps to the conductor.
const (
	ManagerName    = "FerricHardwareManager"
	managerKey     = "ferric_hardware_manager"
	ManagerVersion = "1.0"
)

var hwVersion = protocol.HardwareManagerVersion{managerKey: ManagerVersion}

func boolp(b bool) *bool { return &b }

func steps(kind protocol.StepKind) []protocol.Step {
	switch kind {
	case protocol.KindClean:
		return []protocol.Step{
			{Step: "erase_devices", Interface: "deploy", Priority: 10, Abortable: boolp(true)},
			{Step: "erase_devices_metadata", Interface: "deploy", Priority: 99, Abortable: boolp(true)},
			{Step: "erase_devices_express", Interface: "deploy", Priority: 0, Abortable: boolp(true)},
			{Step: "erase_pstore", Interface: "deploy", Priority: 0, Abortable: boolp(true)},
			{Step: "delete_configuration", Interface: "raid", Priority: 0, Abortable: boolp(true)},
			{Step: "create_configuration", Interface: "raid", Priority: 0, Abortable: boolp(true)},
		}
	case protocol.KindDeploy:
		return []protocol.Step{
			{Step: "write_image", Interface: "deploy", Priority: 0},
			{Step: "erase_devices_metadata", Interface: "deploy", Priority: 0},
			{Step: "apply_configuration", Interface: "raid", Priority: 0},
		}
	}
	return []protocol.Step{}
}

func (a *Agent) commands() map[string]handler {
	t := map[string]handler{
		"standby.prepare_image":       {async: true, validate: validImage, fn: a.cmdPrepareImage},
		"standby.cache_image":         {async: true, validate: validImage, fn: a.cmdCacheImage},
		"standby.get_partition_uuids": {fn: a.cmdPartitionUUIDs},
		"standby.sync":                {fn: func(context.Context, json.RawMessage, *command) (any, error) { unix.Sync(); return nil, nil }},
		"standby.power_off":           {async: true, fn: a.cmdSync, after: a.powerAfter(false)},
		"standby.run_image":           {async: true, fn: a.cmdSync, after: a.powerAfter(true)},
		"image.install_bootloader":    {async: true, fn: a.cmdInstallBootloader},
		"log.collect_system_logs":     {fn: a.cmdCollectLogs},
		"system.lockdown":             {fn: func(context.Context, json.RawMessage, *command) (any, error) { unix.Sync(); return nil, nil }, after: a.lockdown},
		"rescue.finalize_rescue":      {validate: validFinalizeRescue, fn: a.cmdFinalizeRescue, after: a.stopAfterRescue},
	}
	for _, k := range []protocol.StepKind{protocol.KindDeploy, protocol.KindClean, protocol.KindService} {
		t[string(k)+".get_"+string(k)+"_steps"] = handler{fn: func(context.Context, json.RawMessage, *command) (any, error) {
			return protocol.GetStepsResult{Kind: k, Steps: map[string][]protocol.Step{ManagerName: steps(k)}, HardwareManagerVersion: hwVersion}, nil
		}}
		t[string(k)+".execute_"+string(k)+"_step"] = handler{async: true, fn: a.executeStep(k)}
	}
	return t
}

func validImage(params json.RawMessage) error {
	var p protocol.WriteImageArgs
	if err := json.Unmarshal(params, &p); err != nil {
		return err
	}
	if len(p.ImageInfo.URLs) == 0 {
		return errors.New("image_info.urls is empty")
	}
	return nil
}

func (a *Agent) executeStep(kind protocol.StepKind) func(context.Context, json.RawMessage, *command) (any, error) {
	return func(ctx context.Context, raw json.RawMessage, c *command) (any, error) {
		var p protocol.ExecuteStepParams
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, &cmdError{typ: "InvalidCommandParamsError", code: 400, message: "Invalid " + string(kind) + " step", err: err}
		}
		if p.Version != nil && !maps.Equal(p.Version, hwVersion) {
			return nil, &cmdError{typ: "VersionMismatch", code: 409, message: "Hardware managers version mismatch",
				err: fmt.Errorf("agent has %v, %s_version is %v", hwVersion, kind, p.Version), status: protocol.StatusCleanVersionMismatch}
		}
		fail := func(err error) error {
			return &cmdError{typ: "DeploymentError", code: 500,
				message: fmt.Sprintf("%s step failed: Error performing %s_step %s", kind, kind, p.Step.Step), err: err}
		}
		node := nodeInfo(p.Node)
		var result any
		switch p.Step.Step {
		case "create_configuration", "apply_configuration", "delete_configuration":
			if p.Step.Interface != "raid" {
				return nil, fail(fmt.Errorf("unknown step %q (interface %s)", p.Step.Step, p.Step.Interface))
			}
			if (p.Step.Step == "apply_configuration") != (kind == protocol.KindDeploy) && p.Step.Step != "delete_configuration" {
				return nil, fail(fmt.Errorf("%s is not a %s step", p.Step.Step, kind))
			}
			res, err := a.raidStep(ctx, p.Step, node)
			if err != nil {
				return nil, fail(err)
			}
			result = res
		case "write_image":
			if kind != protocol.KindDeploy {
				return nil, fail(errors.New("write_image is a deploy step"))
			}
			var args protocol.WriteImageArgs
			if b, ok := p.Step.Args["image_info"]; ok {
				if err := json.Unmarshal(b, &args.ImageInfo); err != nil {
					return nil, fail(fmt.Errorf("image_info: %w", err))
				}
			}
			if b, ok := p.Step.Args["configdrive"]; ok {
				json.Unmarshal(b, &args.Configdrive) // a dict configdrive is built by the conductor; only strings reach us
			}
			if _, err := a.writeImage(ctx, args, node, c, true); err != nil {
				return nil, fail(err)
			}
		case "erase_devices_metadata":
			if err := a.eraseAll(ctx, c, eraseMetadata); err != nil {
				return nil, fail(err)
			}
		case "erase_devices":
			if err := a.eraseAll(ctx, c, eraseFull); err != nil {
				return nil, fail(err)
			}
		case "erase_devices_express":
			if err := a.eraseAll(ctx, c, eraseExpress); err != nil {
				return nil, fail(err)
			}
		case "erase_pstore":
			if kind != protocol.KindClean {
				return nil, fail(errors.New("erase_pstore is a clean step"))
			}
			if err := a.erasePstore(); err != nil {
				return nil, fail(err)
			}
		default:
			return nil, fail(fmt.Errorf("unknown step %q (interface %s)", p.Step.Step, p.Step.Interface))
		}
		out := protocol.ExecuteStepResult{Kind: kind, Step: p.Step}
		if result != nil {
			b, err := json.Marshal(result)
			if err != nil {
				return nil, fail(err)
			}
			out.Result = b
		}
		return out, nil
	}
}

// nodeView is what the agent reads from the node dict the conductor sends.
type nodeView struct {
	UUID             string         `json:"uuid"`
	TargetRAIDConfig map[string]any `json:"target_raid_config"`
	Properties       map[string]any `json:"properties"`
	InstanceInfo     map[string]any `json:"instance_info"`
}

func nodeInfo(raw json.RawMessage) nodeView {
	var n nodeView
	if raw != nil {
		json.Unmarshal(raw, &n)
	}
	return n
}

// rootDevice chooses the disk to write to.
func (a *Agent) rootDevice(ctx context.Context, n nodeView) (protocol.Disk, error) {
	inv, err := a.cfg.Inventory(ctx)
	if err != nil {
		return protocol.Disk{}, fmt.Errorf("inventory: %w", err)
	}
	raw, _ := n.InstanceInfo["root_device"].(map[string]any)
	if raw == nil {
		raw, _ = n.Properties["root_device"].(map[string]any)
	}
	if raw == nil {
		a.mu.Lock()
		raw, _ = a.node.Properties["root_device"].(map[string]any)
		a.mu.Unlock()
	}
	h, err := hints.Parse(raw)
	if err != nil {
		return protocol.Disk{}, err
	}
	inv.Disks = a.withArrays(inv.Disks)
	skipRaw := n.Properties["skip_block_devices"]
	if skipRaw == nil {
		a.mu.Lock()
		skipRaw = a.node.Properties["skip_block_devices"]
		a.mu.Unlock()
	}
	skip, err := hints.ParseSkip(skipRaw)
	if err != nil {
		return protocol.Disk{}, err
	}
	return hints.Select(inv.Disks, h, skip, a.cfg.MinRootSize)
}

func (a *Agent) writeImage(ctx context.Context, args protocol.WriteImageArgs, n nodeView, c *command, withConfigdrive bool) (string, error) {
	root, err := a.rootDevice(ctx, n)
	if err != nil {
		return "", err
	}
	dev, err := a.cfg.OpenDisk(root.Name)
	if err != nil {
		return "", err
	}
	defer dev.Close()
	info := args.ImageInfo
	a.mu.Lock()
	cached := a.cachedImage != "" && a.cachedImage == info.ID+"@"+root.Name
	md5Off := a.md5Disabled
	a.mu.Unlock()
	var res image.Result
	if !cached {
		res, err = image.Write(ctx, dev, info, image.Options{
			Fetcher: a.imageFetcher(info), Client: a.cfg.APIClient, DisableMD5: md5Off,
			Progress: c.setProgress, Logger: a.log,
		})
		if err != nil {
			return "", err
		}
	}
	pu := protocol.PartitionUUIDs{}
	if t, err := disk.ReadTable(dev); err == nil {
		pu.RootUUID = t.DiskID
		pu.EFISystemPartitionUUID = efiboot.ESPUUID(t)
		if res.RootPartitionID == "" {
			res.RootPartitionID = t.DiskID
		}
	}
	cd := args.Configdrive
	if cd == "" {
		cd = info.Configdrive
	}
	if withConfigdrive && cd != "" {
		c.setProgress(protocol.Progress{Phase: "configdrive", Device: root.Name})
		data, err := image.DecodeConfigdrive(ctx, a.imageFetcher(info), cd)
		if err != nil {
			disk.WipeTable(dev)
			return "", fmt.Errorf("%w; partition table wiped", err)
		}
		part, err := image.WriteConfigdrive(dev, data)
		if err != nil {
			disk.WipeTable(dev)
			return "", fmt.Errorf("%w; partition table wiped", err)
		}
		pu.Partitions = map[string]string{"configdrive": part.UUID}
		a.log.Info("configdrive written", "device", root.Name, "partition", part.Number, "bytes", len(data))
	}
	a.mu.Lock()
	a.partUUIDs = pu
	a.rootName = root.Name
	a.cachedImage = info.ID + "@" + root.Name
	if withConfigdrive {
		a.cachedImage = ""
	}
	a.mu.Unlock()
	return fmt.Sprintf("image (%s) written to device %s root_uuid=%s", info.ID, root.Name, res.RootPartitionID), nil
}

func (a *Agent) cmdPrepareImage(ctx context.Context, raw json.RawMessage, c *command) (any, error) {
	var args protocol.WriteImageArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, err
	}
	a.mu.Lock()
	n := nodeView{UUID: a.node.UUID, Properties: a.node.Properties, InstanceInfo: a.node.InstanceInfo}
	a.mu.Unlock()
	s, err := a.writeImage(ctx, args, n, c, true)
	if err != nil {
		return nil, &cmdError{typ: "ImageWriteError", code: 500, message: "Error writing image to device", err: err}
	}
	return s, nil
}

func (a *Agent) cmdCacheImage(ctx context.Context, raw json.RawMessage, c *command) (any, error) {
	var args protocol.WriteImageArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, err
	}
	a.mu.Lock()
	n := nodeView{UUID: a.node.UUID, Properties: a.node.Properties, InstanceInfo: a.node.InstanceInfo}
	a.mu.Unlock()
	s, err := a.writeImage(ctx, args, n, c, false)
	if err != nil {
		return nil, &cmdError{typ: "ImageWriteError", code: 500, message: "Error caching image", err: err}
	}
	return s, nil
}

func (a *Agent) cmdPartitionUUIDs(context.Context, json.RawMessage, *command) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.partUUIDs, nil
}

func (a *Agent) cmdSync(context.Context, json.RawMessage, *command) (any, error) {
	unix.Sync()
	return nil, nil
}

// cmdInstallBootloader: whole-disk images carry their own bootloader. For
// UEFI, as IPA does with efibootmgr, the image's loader on its EFI system
// partition is registered as a firmware boot entry and put first in
// BootOrder (when the agent runs in the ramdisk: EFIVarsDir). A disk
// without an EFI loader, or a machine without EFI variables, is logged and
// succeeds (the firmware's removable-media path may still boot it).
func (a *Agent) cmdInstallBootloader(ctx context.Context, raw json.RawMessage, c *command) (any, error) {
	var p protocol.InstallBootloaderParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	a.mu.Lock()
	pu, rootName := a.partUUIDs, a.rootName
	a.mu.Unlock()
	if pu.RootUUID == "" {
		return nil, &cmdError{typ: "DeviceNotFound", code: 404, message: "Error installing bootloader", err: errors.New("no image was written by this agent")}
	}
	if arr, ok := a.swraid().Array(rootName); ok {
		if err := a.installRAIDBootloader(ctx, arr, p.TargetBootMode); err != nil {
			return nil, &cmdError{typ: "CommandExecutionError", code: 500, message: "Error installing bootloader", err: err}
		}
		return nil, nil
	}
	if p.TargetBootMode != "uefi" {
		a.log.Info("install_bootloader: whole-disk image, bootloader is part of the image", "root_uuid", p.RootUUID, "boot_mode", p.TargetBootMode)
		return nil, nil
	}
	if a.cfg.EFIVarsDir == "" {
		a.log.Info("install_bootloader: UEFI boot entries are managed only by the ramdisk's agent", "device", rootName)
		return nil, nil
	}
	dev, err := a.cfg.OpenDisk(rootName)
	if err != nil {
		return nil, &cmdError{typ: "DeviceNotFound", code: 404, message: "Error installing bootloader", err: err}
	}
	defer dev.Close()
	esp := pu.EFISystemPartitionUUID
	if p.EFISystemPartUUID != nil && *p.EFISystemPartUUID != "" {
		esp = *p.EFISystemPartUUID
	}
	res, err := efiboot.Install(dev, esp, a.cfg.EFIVarsDir)
	switch {
	case errors.Is(err, efiboot.ErrNoVars) || errors.Is(err, efiboot.ErrNoESP):
		a.log.Warn("install_bootloader: no UEFI boot entry written", "device", rootName, "error", err)
		return nil, nil
	case err != nil:
		return nil, &cmdError{typ: "CommandExecutionError", code: 500, message: "Error installing bootloader", err: err}
	}
	a.log.Info("install_bootloader: UEFI boot entry written", "device", rootName, "entry", res.Entry, "label", res.Label,
		"loader", res.Loader, "partition", res.Partition, "boot_order", fmt.Sprint(res.BootOrder))
	return nil, nil
}

func (a *Agent) powerAfter(reboot bool) func(ctx context.Context, gen int) {
	return func(ctx context.Context, gen int) {
		if err := a.cfg.Power.PowerOff(ctx, reboot); err != nil {
			a.log.Error("power action failed", "reboot", reboot, "error", err)
		}
		// Process mode returns here: behave as a freshly booted ramdisk.
		a.reset(gen, "power off/reboot")
	}
}

func (a *Agent) lockdown(ctx context.Context, gen int) {
	select {
	case <-a.stopAPI:
	default:
		close(a.stopAPI)
	}
}

// eraseAll erases every disk of the inventory: metadata only, or all data.
// How eraseAll erases each disk.
type eraseMode int

const (
	eraseMetadata eraseMode = iota // partition tables and signatures
	eraseExpress                   // discard where supported, else metadata
	eraseFull                      // secure discard, discard, else zeroes
)

func (a *Agent) eraseAll(ctx context.Context, c *command, mode eraseMode) error {
	inv, err := a.cfg.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done = map[string]int64{}
		tot  = map[string]int64{}
	)
	for _, d := range a.withArrays(inv.Disks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev, err := a.cfg.OpenDisk(d.Name)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer dev.Close()
			switch mode {
			case eraseMetadata:
				err = disk.EraseMetadata(dev)
				a.log.Info("erased metadata", "device", d.Name, "error", errString(err))
			case eraseExpress:
				var method string
				method, err = disk.EraseExpress(dev)
				a.log.Info("erased device (express)", "device", d.Name, "method", method, "error", errString(err))
			default:
				var method string
				method, err = disk.Erase(ctx, dev, func(n, t int64) {
					mu.Lock()
					done[d.Name], tot[d.Name] = n, t
					var sn, st int64
					for k := range done {
						sn, st = sn+done[k], st+tot[k]
					}
					mu.Unlock()
					c.setProgress(protocol.Progress{Phase: "erasing", BytesWritten: sn, TotalBytes: st})
				})
				a.log.Info("erased device", "device", d.Name, "method", method, "error", errString(err))
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func decodeB64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}
