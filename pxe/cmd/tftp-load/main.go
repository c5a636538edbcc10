// Command tftp-load runs a storm of concurrent TFTP read transfers from one
// process (see package tftpload) and prints, per round, the wall time of
// the whole storm, per-transfer percentiles, failures and the client's own
// CPU time.
//
//	tftp-load -server 10.77.0.1:69 -file undionly.kpxe -n 200 -blksize 1468 -verify /usr/lib/ipxe/undionly.kpxe
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/pxe/tftp/tftpload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tftp-load:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (failed bool, err error) {
	fs := flag.NewFlagSet("tftp-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "127.0.0.1:69", "TFTP server host:port")
	file := fs.String("file", "undionly.kpxe", "file to read")
	n := fs.Int("n", 200, "transfers per round, all started at once")
	conc := fs.Int("c", 0, "at most this many transfers at a time (0: all n)")
	blk := fs.Int("blksize", 512, "blksize to ask for (512: no option)")
	win := fs.Int("windowsize", 1, "windowsize to ask for (1: no option)")
	tsize := fs.Bool("tsize", true, "ask for tsize and check the length")
	verify := fs.String("verify", "", "local copy of the file: every transfer must deliver exactly it")
	timeout := fs.Duration("timeout", time.Second, "retransmission timeout")
	rounds := fs.Int("rounds", 1, "storms to run one after the other")
	label := fs.String("label", "", "prefix of each output line")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *n < 1 || *rounds < 1 {
		return false, errors.New("-n and -rounds must be at least 1")
	}
	o := tftpload.Options{BlockSize: *blk, WindowSize: *win, TSize: *tsize, Timeout: *timeout}
	if *verify != "" {
		if o.Want, err = os.ReadFile(*verify); err != nil {
			return false, err
		}
	}
	for r := 1; r <= *rounds; r++ {
		cpu0 := cpuTime()
		rep, err := tftpload.Storm(ctx, *server, *file, *n, *conc, o)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(stdout, "%sround=%d file=%s %s client_cpu=%.3fs\n", *label, r, *file, rep, (cpuTime() - cpu0).Seconds())
		if rep.Failed > 0 {
			failed = true
		}
	}
	return failed, nil
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
