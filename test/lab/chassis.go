package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// ChassisMachine is what a chassis_control request acts on: a QEMU
// machine, or a test's own machine (test/metal3).
type ChassisMachine interface {
	Running(ctx context.Context) (bool, error)
	PowerOn(ctx context.Context) error
	PowerOff(ctx context.Context) error
	Reset(ctx context.Context) error
	Shutdown(ctx context.Context) error
	SetBootDevice(ctx context.Context, dev string) error
	BootDevice() string
}

// Chassis runs one ipmi_sim chassis_control request against machine q.
// ipmi_sim starts the program with popen and reads its output to EOF:
//
//	get power|boot ...        prints "power:1|0", "boot:pxe|default|..."
//	set power 1|0             starts QEMU | hard power-off
//	set reset 1               hard reset
//	set shutdown 1            ACPI power button
//	set boot pxe|default|none|cdrom|bios   ("ipmitool chassis bootdev disk"
//	                          arrives as "default")
//	set identify ...          ignored
//	check                     exits with an error, as the prototype does
func Chassis(ctx context.Context, q ChassisMachine, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("lab: chassis: no operation")
	}
	op, rest := args[0], args[1:]
	switch op {
	case "get":
		for _, p := range rest {
			switch p {
			case "power":
				on, _ := q.Running(ctx)
				v := 0
				if on {
					v = 1
				}
				fmt.Fprintf(out, "power:%d\n", v)
			case "boot":
				dev := q.BootDevice()
				if dev == BootDisk {
					dev = "default"
				}
				fmt.Fprintf(out, "boot:%s\n", dev)
			default:
				return fmt.Errorf("lab: chassis: invalid parameter %q", p)
			}
		}
		return nil
	case "set":
		for len(rest) >= 2 {
			p, v := rest[0], strings.Trim(rest[1], `"`)
			rest = rest[2:]
			var err error
			switch p {
			case "power":
				if v == "1" {
					err = q.PowerOn(ctx)
				} else {
					err = q.PowerOff(ctx)
				}
			case "reset":
				if on, _ := q.Running(ctx); on {
					err = q.Reset(ctx)
				}
			case "shutdown":
				err = q.Shutdown(ctx)
			case "boot":
				switch v {
				case "default", "none":
					v = BootDisk
				}
				err = q.SetBootDevice(ctx, v)
			case "identify":
			default:
				return fmt.Errorf("lab: chassis: invalid parameter %q", p)
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "check":
		return fmt.Errorf("lab: chassis: check not supported")
	}
	return fmt.Errorf("lab: chassis: unknown operation %q", op)
}

// ChassisMain is the chassis_control entry point for a program: args are
// DIR NAME OP PARAMS... It logs each request to DIR/bmc.log and returns the
// exit code.
func ChassisMain(args []string, stdout io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintln(stdout, "usage: chassis DIR NAME get|set PARAM [VALUE]...")
		return 2
	}
	dir, name := args[0], args[1]
	q, err := LoadQEMU(dir, name)
	if err == nil {
		w := bufio.NewWriter(stdout)
		err = Chassis(context.Background(), q, args[2:], w)
		_ = w.Flush()
	}
	if f, ferr := os.OpenFile(dir+"/bmc.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "%s %s err=%v\n", name, strings.Join(args[2:], " "), err)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	return 0
}
