package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// selfSignedTLS makes the auto-TLS certificate: ECDSA P-384, SAN = the
// advertised host, valid 90 days, backdated one hour for clock skew.
func selfSignedTLS(host string) (*tls.Config, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tpl.IPAddresses = []net.IP{ip}
	} else {
		tpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls cert: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, string(certPEM), nil
}

// LogRing keeps the last bytes of the agent's log for
// log.collect_system_logs. It is an io.Writer.
type LogRing struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// NewLogRing keeps up to max bytes.
func NewLogRing(max int) *LogRing { return &LogRing{max: max} }

// Write implements io.Writer.
func (r *LogRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0:0], r.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of the buffered log.
func (r *LogRing) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf)
}

// cmdCollectLogs is log.collect_system_logs: systemLogs.
func (a *Agent) cmdCollectLogs(ctx context.Context, _ json.RawMessage, _ *command) (any, error) {
	logs, err := a.systemLogs(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.SystemLogsResult{SystemLogs: logs}, nil
}

// systemLogs is base64(tar.gz) of the agent log, kernel and system state
// files, the inventory and the commands run.
func (a *Agent) systemLogs(ctx context.Context) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
		tw.Write(data)
	}
	if a.cfg.LogBuffer != nil {
		add("ferric-agent.log", a.cfg.LogBuffer.Bytes())
	}
	for _, f := range []string{"proc/cmdline", "proc/mounts", "proc/meminfo", "proc/partitions", "proc/modules", "proc/net/dev"} {
		if b, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, f)); err == nil {
			add(f, b)
		}
	}
	// The kernel's log (the ramdisk has no journal: its dmesg), the
	// network state and the block devices, as IPA's collect_system_logs
	// gathers them with journalctl/dmesg, ip and lsblk.
	if b := kernelLog(); len(b) > 0 {
		add("dmesg", b)
	}
	add("network.txt", networkState(a.cfg.ProcRoot))
	add("block-devices.txt", blockDevices(a.cfg.ProcRoot))
	for _, f := range []string{"proc/net/route", "proc/net/ipv6_route", "proc/net/arp", "etc/resolv.conf"} {
		if b, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, f)); err == nil {
			add(f, b)
		}
	}
	if inv, err := a.cfg.Inventory(ctx); err == nil {
		b, _ := json.MarshalIndent(inv, "", "  ")
		add("inventory.json", b)
	}
	b, _ := json.MarshalIndent(a.cmds.all(), "", "  ")
	add("commands.json", b)
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// kernelLog reads the kernel's log buffer (dmesg); nil without the
// right to.
func kernelLog() []byte {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || n <= 0 {
		return nil
	}
	buf := make([]byte, min(n, 16<<20))
	n, err = unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}

// networkState lists the links with their MAC, flags, MTU and addresses
// (what `ip addr` shows).
func networkState(root string) []byte {
	var b bytes.Buffer
	ifs, err := net.Interfaces()
	if err != nil {
		fmt.Fprintf(&b, "interfaces: %v\n", err)
	}
	for _, ifc := range ifs {
		fmt.Fprintf(&b, "%d: %s mtu %d flags %s mac %s\n", ifc.Index, ifc.Name, ifc.MTU, ifc.Flags, ifc.HardwareAddr)
		if st, err := os.ReadFile(filepath.Join(root, "sys/class/net", ifc.Name, "operstate")); err == nil {
			fmt.Fprintf(&b, "    state %s\n", strings.TrimSpace(string(st)))
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			fmt.Fprintf(&b, "    inet %s\n", a)
		}
	}
	return b.Bytes()
}

// blockDevices lists /sys/block: each device's size (bytes), model,
// removable and read-only flags, and its partitions (what lsblk shows).
func blockDevices(root string) []byte {
	var b bytes.Buffer
	dir := filepath.Join(root, "sys/block")
	des, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(&b, "sys/block: %v\n", err)
		return b.Bytes()
	}
	read := func(p ...string) string {
		v, _ := os.ReadFile(filepath.Join(append([]string{dir}, p...)...))
		return strings.TrimSpace(string(v))
	}
	for _, de := range des {
		name := de.Name()
		sectors, _ := strconv.ParseInt(read(name, "size"), 10, 64)
		fmt.Fprintf(&b, "%s size %d model %q removable %s ro %s\n", name, sectors*512, read(name, "device", "model"),
			read(name, "removable"), read(name, "ro"))
		parts, _ := os.ReadDir(filepath.Join(dir, name))
		for _, p := range parts {
			if !strings.HasPrefix(p.Name(), name) {
				continue
			}
			ps, _ := strconv.ParseInt(read(name, p.Name(), "size"), 10, 64)
			fmt.Fprintf(&b, "  %s size %d\n", p.Name(), ps*512)
		}
	}
	return b.Bytes()
}

// erasePstore deletes the records of every pstore filesystem mounted (the
// kernel's saved oops and panic logs, which may hold the previous tenant's
// data), as IPA's erase_pstore. Without a pstore there is nothing to erase.
func (a *Agent) erasePstore() error {
	mounts, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, "proc/mounts"))
	if err != nil {
		return fmt.Errorf("erase_pstore: %w", err)
	}
	found, erased := false, 0
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "pstore" {
			continue
		}
		found = true
		entries, err := os.ReadDir(f[1])
		if err != nil {
			return fmt.Errorf("erase_pstore: %w", err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(f[1], e.Name())); err != nil {
				return fmt.Errorf("erase_pstore: %w", err)
			}
			erased++
		}
	}
	if !found {
		a.log.Warn("erase_pstore: no pstore filesystem mounted, nothing to erase")
		return nil
	}
	a.log.Info("erase_pstore: pstore records erased", "records", erased)
	return nil
}
