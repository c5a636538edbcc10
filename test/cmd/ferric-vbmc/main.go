// Command ferric-vbmc runs virtual BMCs for QEMU lab machines.
//
//	ferric-vbmc serve   [flags]            one ipmi_sim per machine + a Redfish emulator
//	ferric-vbmc chassis DIR NAME get|set ... ipmi_sim's chassis_control program
//
// serve creates (or reuses) machine configurations vm0..vmN-1 in -dir, starts
// an OpenIPMI ipmi_sim per machine on consecutive UDP ports from -ipmi-port
// (lanplus, cipher suite 3), each using this binary's chassis mode to start,
// stop and reset the machine's QEMU and set its boot order and offering the
// machine an in-band KCS BMC on -ipmi-serial-port (QEMU ipmi-bmc-extern:
// the deploy agent reads the BMC's LAN address from it), and serves the
// Redfish emulator for all machines on -redfish-listen. It runs until
// SIGINT/SIGTERM, then stops the BMCs and powers the machines off.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "chassis" {
		// ipmi_sim reads our output to EOF; keep it exactly the protocol.
		os.Exit(lab.ChassisMain(os.Args[2:], os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-vbmc:", err)
		os.Exit(1)
	}
}

// env returns the FERRIC_VBMC_* mirror of a flag, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("FERRIC_VBMC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(stderr, "usage: ferric-vbmc serve [flags] | ferric-vbmc chassis DIR NAME get|set PARAM [VALUE]...")
		return errors.New("no command")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", env("dir", "/tmp/ferric-lab/vm"), "state directory of the machines (env FERRIC_VBMC_DIR)")
	count := fs.Int("machines", envInt("machines", 1), "number of machines vm0..vmN-1 (env FERRIC_VBMC_MACHINES)")
	netMode := fs.String("net", env("net", "user"), `machine network: "user", "tap" (tapI for vmI) or "none" (env FERRIC_VBMC_NET)`)
	mem := fs.Int("mem", envInt("mem", lab.DefaultMemMiB), "guest RAM in MiB (env FERRIC_VBMC_MEM)")
	diskSize := fs.Int("disk-size", envInt("disk-size", lab.DefaultDiskSizeMiB), "size of new sparse disks in MiB (env FERRIC_VBMC_DISK_SIZE)")
	firmware := fs.String("firmware", env("firmware", "bios"), "bios or uefi (env FERRIC_VBMC_FIRMWARE)")
	ipmiAddr := fs.String("ipmi-addr", env("ipmi-addr", "127.0.0.1"), "address of the IPMI BMCs (env FERRIC_VBMC_IPMI_ADDR)")
	ipmiPort := fs.Int("ipmi-port", envInt("ipmi-port", 6230), "UDP port of vm0's BMC, vmI gets port+I; 0 disables IPMI (env FERRIC_VBMC_IPMI_PORT)")
	serialPort := fs.Int("ipmi-serial-port", envInt("ipmi-serial-port", 6330), "TCP port of vm0's in-band BMC interface (a KCS device in the machine that is its ipmi_sim, whose LAN address is set to 192.0.2.(10+I)), vmI gets port+I; 0 disables it (env FERRIC_VBMC_IPMI_SERIAL_PORT)")
	solPort := fs.Int("sol-port", envInt("sol-port", 6430), "TCP port where vm0's QEMU serves its serial port to its ipmi_sim BMC's serial-over-LAN (ipmitool sol activate shows the machine's console), vmI gets port+I; 0 disables it (env FERRIC_VBMC_SOL_PORT)")
	rfListen := fs.String("redfish-listen", env("redfish-listen", "127.0.0.1:8000"), `Redfish emulator address; "" disables it (env FERRIC_VBMC_REDFISH_LISTEN)`)
	rfTLS := fs.Bool("redfish-tls", env("redfish-tls", "") == "true", "serve Redfish over HTTPS with a self-signed certificate (env FERRIC_VBMC_REDFISH_TLS)")
	user := fs.String("user", env("user", "admin"), "BMC user name (env FERRIC_VBMC_USER)")
	passFile := fs.String("password-file", env("password-file", ""), "file holding the BMC password (env FERRIC_VBMC_PASSWORD_FILE; else env FERRIC_VBMC_PASSWORD, else \"password\")")
	vmedia := fs.Bool("vmedia", env("vmedia", "") == "true", "give each machine a CD drive and the Redfish BMC virtual media (images downloaded to DIR/media) (env FERRIC_VBMC_VMEDIA)")
	macBase := fs.String("mac-prefix", env("mac-prefix", "52:54:00:00:00"), "MAC prefix; vmI gets PREFIX:(I+1) in hex (env FERRIC_VBMC_MAC_PREFIX)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	pass := env("password", "password")
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return fmt.Errorf("password file: %w", err)
		}
		pass = strings.TrimSpace(string(b))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	mediaDir := ""
	if *vmedia {
		mediaDir = filepath.Join(*dir, "media")
		if err := os.MkdirAll(mediaDir, 0o755); err != nil {
			return err
		}
	}
	machines := map[string]redfish.Machine{}
	var order []string
	var qs []*lab.QEMU
	for i := range *count {
		name := fmt.Sprintf("vm%d", i)
		netCfg := *netMode
		if netCfg == "tap" {
			netCfg = fmt.Sprintf("tap:tap%d", i)
		}
		mc := lab.MachineConfig{
			Name: name, Dir: *dir, MAC: fmt.Sprintf("%s:%02x", *macBase, i+1), Net: netCfg,
			MemMiB: *mem, DiskSizeMiB: *diskSize, Firmware: *firmware, CDROM: *vmedia,
		}
		if *ipmiPort > 0 && *serialPort > 0 {
			mc.BMCSerial = net.JoinHostPort(*ipmiAddr, strconv.Itoa(*serialPort+i))
		}
		if *ipmiPort > 0 && *solPort > 0 {
			mc.SOLListen = net.JoinHostPort(*ipmiAddr, strconv.Itoa(*solPort+i))
		}
		q, err := lab.NewQEMU(mc)
		if err != nil {
			return err
		}
		if err := q.Save(); err != nil {
			return err
		}
		qs = append(qs, q)
		machines[name] = q
		order = append(order, name)
	}
	defer func() {
		for _, q := range qs {
			if err := q.PowerOff(context.Background()); err != nil {
				log.Warn("power off", "machine", q.Config().Name, "error", err)
			}
		}
	}()

	if *ipmiPort > 0 {
		for i, q := range qs {
			name := q.Config().Name
			simCfg := lab.IPMISimConfig{
				Name: name, Dir: *dir, Addr: *ipmiAddr, Port: *ipmiPort + i,
				Username: *user, Password: pass,
				ChassisControl: []string{self, "chassis", *dir, name},
			}
			if *serialPort > 0 {
				simCfg.SerialPort = *serialPort + i
			}
			if *solPort > 0 {
				simCfg.SOL = "tcp:" + net.JoinHostPort(*ipmiAddr, strconv.Itoa(*solPort+i))
			}
			sim, err := lab.StartIPMISim(ctx, simCfg)
			if err != nil {
				return err
			}
			defer sim.Stop()
			if *serialPort > 0 {
				// What the agent reads in-band: a LAN address that is not
				// the lab's (127.0.0.1 is every lab BMC's), so it never
				// makes inspection match the wrong node.
				if err := sim.SetLAN(ctx, fmt.Sprintf("192.0.2.%d", 10+i), fmt.Sprintf("52:54:00:b3:c0:%02x", i+1)); err != nil {
					log.Warn("ipmi BMC LAN settings", "machine", name, "error", err)
				}
			}
			log.Info("ipmi BMC ready", "machine", name, "addr", sim.Addr(), "mac", q.Config().MAC, "pid", sim.Pid())
			fmt.Fprintf(stdout, "ipmi %s %s\n", name, sim.Addr())
		}
	}

	errc := make(chan error, 1)
	if *rfListen != "" {
		ln, err := net.Listen("tcp", *rfListen)
		if err != nil {
			return fmt.Errorf("redfish: %w", err)
		}
		srv := &http.Server{
			Handler:           redfish.New(redfish.Config{Username: *user, Password: pass, Machines: machines, Order: order, MediaDir: mediaDir, Logger: log}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		scheme := "http"
		if *rfTLS {
			cert, err := selfSigned()
			if err != nil {
				return err
			}
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			ln = tls.NewListener(ln, srv.TLSConfig)
			scheme = "https"
		}
		go func() { errc <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("redfish BMC ready", "url", scheme+"://"+ln.Addr().String(), "systems", strings.Join(order, ","))
		fmt.Fprintf(stdout, "redfish %s://%s\n", scheme, ln.Addr())
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case err := <-errc:
		return fmt.Errorf("redfish: %w", err)
	}
}

// selfSigned makes a throw-away certificate for the Redfish emulator.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ferric-vbmc"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.99.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
