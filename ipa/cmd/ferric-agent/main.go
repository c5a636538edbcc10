// Command ferric-agent is ferric's in-ramdisk deploy agent, compatible with
// Ironic's ironic-python-agent protocol. As PID 1 of a ramdisk (/init) it
// sets the system up (mounts, modules, DHCP) and reads its settings from
// the kernel command line; as a normal process it takes flags, uses files as
// disks, and simulates power-off by starting over with a lookup.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-agent:", err)
		os.Exit(1)
	}
}
