package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// InstanceBootKey in a node's driver_internal_info names the boot
// interface that set up the boot of a ramdisk deploy's instance (its
// instance_info boot_iso, or kernel and ramdisk): the network boot then
// serves the instance instead of the local disk, and tear down undoes it.
const InstanceBootKey = "instance_boot_interface"

// RamdiskDeploy is the ramdisk deploy interface (Ironic's ramdisk): the
// instance is a ramdisk or ISO the boot interface boots; nothing is
// written to a disk and no agent runs during the deploy (cleaning still
// boots the agent's ramdisk).
type RamdiskDeploy interface {
	DeploysRamdisk()
}

// CustomAgentDeploy is the custom-agent deploy interface: the conductor
// boots the agent's ramdisk and runs the deploy steps the agent offers
// (and the user's), with no image write of its own, then boots the
// machine from its disk.
type CustomAgentDeploy interface {
	RunsAgentStepsOnly()
}

// InstanceBooter is a boot interface that can boot a ramdisk deploy's
// instance (Ironic's ramdisk_boot capability). PrepareInstance readies the
// boot of the node's instance_info boot_iso (or kernel and ramdisk with
// kernel_append_params) and returns the boot device to set persistently;
// CleanUpInstance undoes it (tear down), and succeeds when there is
// nothing to undo.
type InstanceBooter interface {
	PrepareInstance(ctx context.Context, n *Node) (device string, err error)
	CleanUpInstance(ctx context.Context, n *Node) error
}

// ConfigDriveBooter is an InstanceBooter that also hands a ramdisk
// deploy's config drive (instance_info configdrive) to the instance
// (Ironic's ramdisk_boot_configdrive capability); with any other boot
// interface the ramdisk deploy ignores the config drive, with a warning.
type ConfigDriveBooter interface {
	InstanceBooter
	AttachesConfigDrive()
}

// InstanceImage is what a ramdisk deploy boots from a node's
// instance_info: the boot ISO's URL, or the kernel and ramdisk URLs and
// kernel parameters, and how the image reaches the BMC.
type InstanceImage struct {
	BootISO, Kernel, Ramdisk, Params string
	// DownloadSource is "local" (the conductor serves a copy) or "http".
	DownloadSource string
}

// ReadInstanceImage returns the instance image of a node's instance_info,
// with Ironic's messages for what is missing or contradictory.
func ReadInstanceImage(n *Node) (InstanceImage, error) {
	str := func(k string) string { v, _ := n.InstanceInfo[k].(string); return strings.TrimSpace(v) }
	im := InstanceImage{BootISO: str("boot_iso"), Kernel: str("kernel"), Ramdisk: str("ramdisk"),
		Params: str("kernel_append_params"), DownloadSource: str("ramdisk_image_download_source")}
	if im.DownloadSource == "" {
		im.DownloadSource = "local"
	}
	if im.DownloadSource != "local" && im.DownloadSource != "http" {
		//lint:ignore ST1005 Ironic's message
		return im, fmt.Errorf("Invalid value for ramdisk_image_download_source: %q, expected one of local, http", im.DownloadSource)
	}
	if im.BootISO != "" {
		if str("image_source") != "" {
			//lint:ignore ST1005 Ironic's message
			return im, errors.New("An 'image_source' and 'boot_iso' parameter may not be specified at the same time.")
		}
		return im, nil
	}
	if im.Kernel == "" && im.Ramdisk == "" && str("image_source") != "" {
		//lint:ignore ST1005 Ironic's message
		return im, fmt.Errorf("Unable to find kernel or ramdisk for to generate boot ISO for %s", n.UUID)
	}
	var missing []string
	for _, kv := range [][2]string{{"kernel", im.Kernel}, {"ramdisk", im.Ramdisk}} {
		if kv[1] == "" {
			missing = append(missing, "'"+kv[0]+"'")
		}
	}
	if len(missing) > 0 {
		//lint:ignore ST1005 Ironic's message
		return im, fmt.Errorf("Cannot validate image information for node %s because one or more parameters are missing from its instance_info and insufficient information is present to boot from a remote volume. Missing are: [%s]", n.UUID, strings.Join(missing, ", "))
	}
	return im, nil
}

// HTTPBooter is a management interface that can have the machine boot
// over UEFI HTTP from a URL (redfish: Boot.HttpBootUri with the UefiHttp
// override), once or persistently.
type HTTPBooter interface {
	SetHTTPBoot(ctx context.Context, n *Node, url string, persistent bool) error
}
