package ipxe

import (
	"fmt"
	"net"
	"strings"
)

// ActionKind says what a node should boot next.
type ActionKind int

const (
	// ActionUnknown: the conductor has nothing for this MAC. The script
	// prints Action.Message and exits to the firmware's next boot device.
	ActionUnknown ActionKind = iota
	// ActionDeploy boots the deploy/inspection ramdisk in Action.Ramdisk.
	ActionDeploy
	// ActionLocalDisk boots the first local disk.
	ActionLocalDisk
	// ActionInstance boots a ramdisk deploy's instance: the kernel and
	// initramfs of Action.Instance with its parameters, or its ISO.
	ActionInstance
)

func (k ActionKind) String() string {
	switch k {
	case ActionDeploy:
		return "deploy"
	case ActionLocalDisk:
		return "local-disk"
	case ActionInstance:
		return "instance"
	default:
		return "unknown"
	}
}

// Action is the conductor's boot decision for one MAC.
type Action struct {
	Kind ActionKind
	// Node is the node's UUID or name, used in log lines and messages.
	Node string
	// Ramdisk is required for ActionDeploy.
	Ramdisk Ramdisk
	// Instance is required for ActionInstance.
	Instance Instance
	// Message is shown on the console for ActionUnknown (one line; a
	// default is used when empty).
	Message string
}

// Instance is the instance of a ramdisk deploy: an ISO booted from its
// URL (ISOURL), or a kernel and initramfs with their parameters.
type Instance struct {
	ISOURL               string
	KernelURL, InitrdURL string
	Args                 []Param
}

// Ramdisk describes the deploy ramdisk (IPA) boot.
type Ramdisk struct {
	KernelURL string // absolute http(s) URL of the kernel
	InitrdURL string // absolute http(s) URL of the initramfs
	// APIURL is passed as ipa-api-url (required).
	APIURL string
	// InspectionCallbackURL is passed as ipa-inspection-callback-url when
	// set (inspection boots).
	InspectionCallbackURL string
	// Console holds console= values, e.g. "tty0", "ttyS0,115200n8".
	Console []string
	// ExtraArgs are appended last (use ParseParam to build them).
	ExtraArgs []Param
}

// Script renders the per-MAC iPXE script for a. It fails only when the
// action's URLs or kernel arguments cannot be placed on an iPXE command line
// safely (ErrInvalidArg).
func Script(mac net.HardwareAddr, a Action) (string, error) {
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	switch a.Kind {
	case ActionDeploy:
		r := a.Ramdisk
		if err := checkURL("kernel URL", r.KernelURL); err != nil {
			return "", err
		}
		if err := checkURL("initrd URL", r.InitrdURL); err != nil {
			return "", err
		}
		args, err := KernelArgs(mac, r)
		if err != nil {
			return "", err
		}
		// initrd= plus --name lets the same script boot through the EFI
		// stub; BIOS kernels ignore initrd=.
		fmt.Fprintf(&b, "echo ferric: booting deploy ramdisk for %s\n", mac)
		fmt.Fprintf(&b, "kernel %s initrd=ramdisk %s || goto fail\n", r.KernelURL, JoinArgs(args))
		fmt.Fprintf(&b, "initrd --name ramdisk %s || goto fail\n", r.InitrdURL)
		b.WriteString("boot || goto fail\n")
		b.WriteString(":fail\n")
		b.WriteString("echo ferric: deploy ramdisk boot failed, retrying in 10 seconds\n")
		b.WriteString("sleep 10\n")
		b.WriteString("reboot\n")
	case ActionInstance:
		if err := instanceScript(&b, mac, a.Instance); err != nil {
			return "", err
		}
	case ActionLocalDisk:
		// sanboot hands over to the BIOS disk 0x80; UEFI has no such drive
		// number, so there "exit" returns to the firmware boot order.
		fmt.Fprintf(&b, "echo ferric: booting %s from local disk\n", mac)
		b.WriteString("iseq ${platform} efi && exit 0 ||\n")
		b.WriteString("sanboot --no-describe --drive 0x80 || exit 0\n")
	default:
		msg := sanitizeMessage(a.Message)
		if msg == "" {
			msg = "no boot action for this MAC address is known to the conductor"
		}
		fmt.Fprintf(&b, "echo ferric: %s: %s\n", mac, msg)
		b.WriteString("echo ferric: exiting to the next boot device\n")
		b.WriteString("sleep 5\n")
		b.WriteString("exit 0\n")
	}
	return b.String(), nil
}

// sanitizeMessage keeps a message on one echo line: printable ASCII only,
// no "$" (iPXE would expand it), at most 200 bytes.
func sanitizeMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		c := s[i]
		if c < ' ' || c >= 0x7f || c == '$' {
			c = '?'
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}

// ChainScript is the generic boot.ipxe: it chains to the per-MAC script
// under base (which ends in "/").
func ChainScript(base string) string {
	return "#!ipxe\n" +
		"echo ferric: fetching the boot script for ${net0/mac}\n" +
		"chain --autofree " + base + "nodes/${net0/mac}.ipxe || goto fail\n" +
		":fail\n" +
		"echo ferric: could not fetch " + base + "nodes/${net0/mac}.ipxe, retrying in 10 seconds\n" +
		"sleep 10\n" +
		"reboot\n"
}

// instanceScript writes the boot of a ramdisk deploy's instance.
func instanceScript(b *strings.Builder, mac net.HardwareAddr, in Instance) error {
	fmt.Fprintf(b, "echo ferric: booting the instance of %s\n", mac)
	if in.ISOURL != "" {
		if err := checkURL("ISO URL", in.ISOURL); err != nil {
			return err
		}
		fmt.Fprintf(b, "sanboot --no-describe %s || goto fail\n", in.ISOURL)
	} else {
		if err := checkURL("kernel URL", in.KernelURL); err != nil {
			return err
		}
		if err := checkURL("initrd URL", in.InitrdURL); err != nil {
			return err
		}
		for _, p := range in.Args {
			if err := p.Validate(); err != nil {
				return err
			}
		}
		fmt.Fprintf(b, "kernel %s initrd=ramdisk %s || goto fail\n", in.KernelURL, JoinArgs(in.Args))
		fmt.Fprintf(b, "initrd --name ramdisk %s || goto fail\n", in.InitrdURL)
		b.WriteString("boot || goto fail\n")
	}
	b.WriteString(":fail\n")
	b.WriteString("echo ferric: instance boot failed, retrying in 10 seconds\n")
	b.WriteString("sleep 10\n")
	b.WriteString("reboot\n")
	return nil
}
