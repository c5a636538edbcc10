package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LogLeases is a Leases store in an append-only file of fixed-size,
// checksummed records (a write-ahead log, like Kea's memfile CSV), of one
// address family (LogOptions.Family: DHCPv4's 24-byte records or
// DHCPv6's 36-byte ones, each family with record kinds of its own):
//
//   - Store and Remove append one record with a single write(2)
//     before they return, so a lease the server ACKs is in the kernel and
//     survives a kill -9 of the process.
//   - A background goroutine fdatasyncs the file in group commits (every
//     write since the last sync in one call, at most every SyncInterval),
//     so after a power loss at most that window of leases is lost. With
//     SyncOnStore, Store also waits for the sync that covers its record
//     (power-loss safe ACKs, one fdatasync of latency).
//   - When the log holds many more records than live leases it is
//     compacted: the live leases are written to a new file, synced and
//     renamed over the old one.
//
// Load skips records whose checksum fails (and reports them: see Corrupt),
// drops a torn record at the end of the file (a write cut short by a crash
// or a full disk) and keeps a copy of a damaged file next to it before
// rewriting it. A failed write (disk full) is cut off again, so the log
// stays readable, and returned as an error: the server then sends no ACK.
type LogLeases struct {
	path string
	opts LogOptions
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // signalled when synced or written moves
	f       *os.File
	fam     LeaseFamily
	recLen  int                             // fam.recordLen()
	size    int64                           // bytes of whole records in f
	live    map[[16]byte][maxRecordLen]byte // record per leased address (As16)
	records int                             // records in f
	written uint64                          // records appended since open
	synced  uint64                          // records known to be on disk
	syncErr error                           // last fdatasync error, cleared by a good one
	closed  bool
	corrupt int
	syncing bool       // syncLoop is in fdatasync outside mu
	retired []*os.File // files replaced by a compaction during a sync

	kick chan struct{}
	done chan struct{}
}

// LogOptions tune a LogLeases. The zero value is usable.
type LogOptions struct {
	// SyncInterval is the longest a written record waits for fdatasync
	// (the power-loss window). Default DefaultSyncInterval.
	SyncInterval time.Duration
	// SyncOnStore makes Store and Remove wait for the fdatasync that
	// covers their record before returning.
	SyncOnStore bool
	// CompactMin is the fewest records a log needs before it is compacted
	// (when it also holds more than twice the live leases). Default 4096.
	CompactMin int
	// Logger receives corruption and sync errors. Default slog.Default().
	Logger *slog.Logger
	// Family is the address family of the leases (IPv4Leases or
	// IPv6Leases). The zero value is IPv4Leases.
	Family LeaseFamily
}

// DefaultSyncInterval bounds how long a written lease waits for
// fdatasync.
const DefaultSyncInterval = 5 * time.Millisecond

// Lease log record of a family whose addresses are n bytes long (4 or
// 16): kind (the family's store or remove kind), the address, the MAC, one
// zero byte, the expiry in Unix nanoseconds (big-endian), and the CRC-32C
// of everything before it; 20+n bytes. The kinds differ between the
// families (IPv4 1 and 2, IPv6 3 and 4), so that a record of one family
// never replays as the other's.
const (
	logRecordLen = 20 + 4  // an IPv4 record
	maxRecordLen = 20 + 16 // an IPv6 record
)

// recordLen is the length of the family's log records.
func (f LeaseFamily) recordLen() int { return 20 + f.addrLen }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord fills b (f.recordLen() bytes) with one record.
func (f LeaseFamily) encodeRecord(b []byte, kind byte, ip netip.Addr, mac net.HardwareAddr, expiry time.Time) {
	n := f.addrLen
	b[0] = kind
	if n == 4 {
		a := ip.As4()
		copy(b[1:5], a[:])
	} else {
		a := ip.As16()
		copy(b[1:17], a[:])
	}
	copy(b[1+n:7+n], mac)
	b[7+n] = 0
	binary.BigEndian.PutUint64(b[8+n:16+n], uint64(expiry.UnixNano()))
	binary.BigEndian.PutUint32(b[16+n:20+n], crc32.Checksum(b[:16+n], castagnoli))
}

// validRecord reports whether b is one whole, undamaged record of f.
func (f LeaseFamily) validRecord(b []byte) bool {
	n := f.addrLen
	return len(b) == f.recordLen() && (b[0] == f.storeKind || b[0] == f.removeKind) && b[7+n] == 0 &&
		binary.BigEndian.Uint32(b[16+n:20+n]) == crc32.Checksum(b[:16+n], castagnoli)
}

// recordKey is the live map's key of a record's address.
func (f LeaseFamily) recordKey(b []byte) [16]byte {
	a, _ := netip.AddrFromSlice(b[1 : 1+f.addrLen])
	return a.As16()
}

// decodeRecord returns the lease of a valid store record.
func (f LeaseFamily) decodeRecord(b []byte) Lease {
	n := f.addrLen
	a, _ := netip.AddrFromSlice(b[1 : 1+n])
	return Lease{
		IP:     a,
		MAC:    append(net.HardwareAddr(nil), b[1+n:7+n]...),
		Expiry: time.Unix(0, int64(binary.BigEndian.Uint64(b[8+n:16+n]))),
	}
}

// OpenLogLeases opens (or creates) the lease log of opts.Family at path,
// reads it and starts the background sync.
func OpenLogLeases(path string, opts LogOptions) (*LogLeases, error) {
	if opts.Family.addrLen == 0 {
		opts.Family = IPv4Leases
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.CompactMin <= 0 {
		opts.CompactMin = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &LogLeases{path: path, opts: opts, log: opts.Logger, fam: opts.Family, recLen: opts.Family.recordLen(),
		live: map[[16]byte][maxRecordLen]byte{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	if err := l.read(); err != nil {
		return nil, err
	}
	go l.syncLoop()
	return l, nil
}

// read loads the file into live and leaves f open for appending.
func (l *LogLeases) read() error {
	data, err := os.ReadFile(l.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dhcp: read lease log %s: %w", l.path, err)
	}
	rl := l.recLen
	whole := len(data) / rl * rl
	torn := len(data) - whole
	for off := 0; off < whole; off += rl {
		rec := data[off : off+rl]
		if !l.fam.validRecord(rec) {
			if off+rl == whole {
				torn += rl // last record cut short and padded by a crash
				continue
			}
			l.corrupt++
			continue
		}
		l.apply(rec)
	}
	if l.corrupt > 0 || torn > 0 {
		if l.corrupt > 0 {
			keep := fmt.Sprintf("%s.corrupt-%d", l.path, time.Now().Unix())
			if err := os.WriteFile(keep, data, 0o600); err != nil {
				return fmt.Errorf("dhcp: lease log %s has %d damaged records; keeping a copy: %w", l.path, l.corrupt, err)
			}
			l.log.Error("dhcp: lease log damaged: skipped records whose checksum fails; a copy of the file is kept",
				"path", l.path, "damaged_records", l.corrupt, "copy", keep, "leases_loaded", len(l.live))
		} else {
			l.log.Warn("dhcp: lease log ends in a torn record (crash or full disk during a write); dropped it",
				"path", l.path, "bytes", torn)
		}
		return l.rewrite()
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dhcp: open lease log %s: %w", l.path, err)
	}
	l.f, l.size, l.records = f, int64(whole), whole/rl
	return nil
}

// apply replays one valid record into live.
func (l *LogLeases) apply(rec []byte) {
	k := l.fam.recordKey(rec)
	if rec[0] == l.fam.removeKind {
		delete(l.live, k)
		return
	}
	var r [maxRecordLen]byte
	copy(r[:], rec)
	l.live[k] = r
}

// rewrite writes live to a new file, syncs it, renames it over the log and
// makes it the file appended to. Caller holds mu (or is the constructor).
func (l *LogLeases) rewrite() error {
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("dhcp: compact lease log: %w", err)
	}
	buf := make([]byte, 0, len(l.live)*l.recLen)
	for _, rec := range l.live {
		buf = append(buf, rec[:l.recLen]...)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(l.path))
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("dhcp: compact lease log %s: %w", l.path, err)
	}
	f.Close()
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dhcp: reopen lease log %s: %w", l.path, err)
	}
	if l.f != nil {
		if l.syncing {
			l.retired = append(l.retired, l.f) // syncLoop closes it
		} else {
			l.f.Close()
		}
	}
	l.f, l.size, l.records = nf, int64(len(buf)), len(l.live)
	l.synced = l.written // everything live is in the synced new file
	l.cond.Broadcast()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Corrupt returns how many damaged records the last load skipped.
func (l *LogLeases) Corrupt() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.corrupt
}

// Load implements Leases.
func (l *LogLeases) Load(ctx context.Context) ([]Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Lease, 0, len(l.live))
	for _, rec := range l.live {
		out = append(out, l.fam.decodeRecord(rec[:l.recLen]))
	}
	return out, ctx.Err()
}

// Store implements Leases.
func (l *LogLeases) Store(ctx context.Context, lease Lease) error {
	if !l.fam.holds(lease.IP) || len(lease.MAC) != 6 {
		return fmt.Errorf("dhcp: store lease: need an %s address and an Ethernet MAC, got %v %v", l.fam.name, lease.IP, lease.MAC)
	}
	return l.append(ctx, l.fam.storeKind, lease.IP, lease.MAC, lease.Expiry)
}

// Remove implements Leases.
func (l *LogLeases) Remove(ctx context.Context, ip netip.Addr) error {
	if !l.fam.holds(ip) {
		return nil
	}
	return l.append(ctx, l.fam.removeKind, ip, make(net.HardwareAddr, 6), time.Unix(0, 0))
}

func (l *LogLeases) append(ctx context.Context, kind byte, ip netip.Addr, mac net.HardwareAddr, expiry time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var rec [maxRecordLen]byte
	l.fam.encodeRecord(rec[:l.recLen], kind, ip, mac, expiry)
	key := ip.As16()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("dhcp: lease log closed")
	}
	if kind == l.fam.removeKind {
		if _, ok := l.live[key]; !ok {
			l.mu.Unlock()
			return nil
		}
	}
	if n, err := l.f.Write(rec[:l.recLen]); err != nil {
		if n > 0 {
			// Cut a partial record off so the log stays a whole number
			// of records (O_APPEND writes land at the end).
			if terr := l.f.Truncate(l.size); terr != nil {
				l.log.Error("dhcp: cannot cut a partial lease record off the log", "path", l.path, "err", terr)
			}
		}
		l.mu.Unlock()
		return fmt.Errorf("dhcp: write lease log %s: %w", l.path, err)
	}
	l.size += int64(l.recLen)
	l.records++
	l.written++
	me := l.written
	if kind == l.fam.removeKind {
		delete(l.live, key)
	} else {
		l.live[key] = rec
	}
	if l.records >= l.opts.CompactMin && l.records > 2*len(l.live)+l.opts.CompactMin/2 {
		if err := l.rewrite(); err != nil {
			// The record is written; the log only stays long.
			l.log.Error("dhcp: lease log compaction failed", "path", l.path, "err", err)
		}
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	var err error
	if l.opts.SyncOnStore {
		for l.synced < me && l.syncErr == nil && !l.closed {
			l.cond.Wait()
		}
		if l.synced < me {
			err = l.syncErr
			if err == nil {
				err = errors.New("dhcp: lease log closed before sync")
			}
			err = fmt.Errorf("dhcp: sync lease log %s: %w", l.path, err)
		}
	}
	l.mu.Unlock()
	return err
}

// syncLoop fdatasyncs whatever was written since the last sync, waiting at
// most SyncInterval between a write and its sync.
func (l *LogLeases) syncLoop() {
	defer close(l.done)
	for {
		_, ok := <-l.kick
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		target, f := l.written, l.f
		if !ok || target <= l.synced {
			l.mu.Unlock()
			if !ok {
				return
			}
			continue
		}
		l.syncing = true
		l.mu.Unlock()
		err := unix.Fdatasync(int(f.Fd()))
		l.mu.Lock()
		if err != nil && l.f == f {
			l.syncErr = err
			l.log.Error("dhcp: lease log fdatasync failed", "path", l.path, "err", err)
		} else {
			l.syncErr = nil
			if target > l.synced {
				l.synced = target
			}
		}
		l.syncing = false
		for _, r := range l.retired {
			r.Close()
		}
		l.retired = nil
		l.cond.Broadcast()
		wait := !l.opts.SyncOnStore
		l.mu.Unlock()
		if wait {
			// Without waiters, group more writes into the next sync.
			time.Sleep(l.opts.SyncInterval)
		}
	}
}

// Sync writes every appended record to disk before it returns.
func (l *LogLeases) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
		return fmt.Errorf("dhcp: sync lease log %s: %w", l.path, err)
	}
	l.synced = l.written
	l.cond.Broadcast()
	return nil
}

// Close syncs and closes the log.
func (l *LogLeases) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	err := unix.Fdatasync(int(l.f.Fd()))
	l.closed = true
	l.cond.Broadcast()
	close(l.kick)
	l.mu.Unlock()
	<-l.done
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dhcp: close lease log %s: %w", l.path, err)
	}
	return nil
}
