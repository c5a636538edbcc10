// Package tftp serves the first-stage iPXE binaries (undionly.kpxe,
// snponly.efi, ipxe.efi) read-only over TFTP from one root directory.
//
// It wraps github.com/pin/tftp/v3: blksize and tsize are negotiated, write
// requests are refused, and a requested name that would leave the root
// (through "..", an absolute name or a symbolic link) is answered with a
// TFTP error. Files are sent from an in-memory copy that is checked against
// the file (inode, size, modification time) on every request.
//
// Where the server's CPU goes (BenchmarkServerCPU: the server in a process
// of its own, CPU time per transfer of a 74 KB file; about 2.3 ms at
// blksize 512 and 0.9 ms at 1468 on the 2-core test machine under load):
// two thirds are the kernel's UDP send and receive of pin/tftp's
// lock-step blocks (one sendto and about 1.5 recvfrom per block, the
// extra one a read before the ACK is there), a tenth Go's poller and
// scheduler, 6% pin/tftp's per-request interface lookup (a netlink dump,
// for the local address of the reply), 2% this package. The lookup goes
// away when pin/tftp is given a conn that is not a *net.UDPConn (4% less
// CPU measured), but then transfers are no longer answered from the
// address the request was sent to, which a provisioning address added
// beside another (a VIP) needs. A minimal sender of its own (connected
// socket, block sent after the poller is armed, no lookup) measured 15%
// less CPU per transfer than pin/tftp: not enough to give up its option,
// error and single-port handling.
package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferric-metal/ferric/pxe/internal/safepath"
	"github.com/pin/tftp/v3"
)

// Defaults used when a Config field is left zero.
const (
	// DefaultRoot is where Debian's ipxe package installs undionly.kpxe,
	// ipxe.efi and snponly.efi.
	DefaultRoot = "/usr/lib/ipxe"
	// DefaultAddr is the TFTP well-known port on every address.
	DefaultAddr = ":69"
	// DefaultBlockSize caps the negotiated blksize: a 1500-byte Ethernet
	// frame minus IPv4, UDP and TFTP headers.
	DefaultBlockSize = 1468
	// DefaultTimeout is how long a transfer waits for an ACK before
	// retransmitting.
	DefaultTimeout = 5 * time.Second
	// DefaultRetries is how many retransmissions a transfer tries.
	DefaultRetries = 5
)

// ErrRefused is wrapped by every error for a request the server will not
// serve (bad name, escape from the root, not a regular file, a write).
var ErrRefused = errors.New("tftp: refused")

// Config configures a Server. The zero value serves DefaultRoot on
// DefaultAddr.
type Config struct {
	// Root is the directory files are served from. Default DefaultRoot.
	Root string
	// Addr is the UDP address to listen on. Default DefaultAddr.
	Addr string
	// BlockSize is the largest blksize the server agrees to (512–65464).
	// Default DefaultBlockSize.
	BlockSize int
	// Timeout is the retransmission timeout. Default DefaultTimeout.
	Timeout time.Duration
	// Retries is the number of retransmissions. Default DefaultRetries.
	Retries int
	// SinglePort answers every transfer from Addr's port instead of a new
	// ephemeral port per transfer (for NAT or container port mapping; slower).
	SinglePort bool
	// Logger receives one line per transfer. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats counts transfers since the server was created.
type Stats struct {
	Requests  uint64 // read and write requests received
	Refused   uint64 // refused: bad name, missing file, write request
	Completed uint64 // transfers finished successfully
	Failed    uint64 // transfers that started but did not finish
	Bytes     uint64 // file bytes sent in completed transfers
}

// Server is a read-only TFTP server. Create it with New, run it with Serve.
type Server struct {
	cfg  Config
	root *os.Root
	conn net.PacketConn
	log  *slog.Logger

	requests, refused, completed, failed, bytes atomic.Uint64

	cacheMu sync.Mutex
	cache   map[string]cached
	cached  int64 // bytes held in cache
}

// cached is a file's content, valid while it is the same file (inode) with
// the same size and modification time.
type cached struct {
	data []byte
	fi   fs.FileInfo
}

// Files up to maxCachedFile bytes are kept in memory, up to maxCache bytes
// in all: a boot storm reads the same few iPXE binaries hundreds of times,
// and a block from memory saves one read(2) per packet sent.
const (
	maxCachedFile = 16 << 20
	maxCache      = 64 << 20
)

// New opens the root directory and the listening socket. The socket is
// bound in the network namespace of the calling thread.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.BlockSize < 512 || cfg.BlockSize > 65464 {
		return nil, fmt.Errorf("tftp: block size %d outside 512–65464", cfg.BlockSize)
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: open root: %w", err)
	}
	conn, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("tftp: listen %s: %w", cfg.Addr, err)
	}
	return &Server{cfg: cfg, root: root, conn: conn, log: cfg.Logger}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Stats returns a snapshot of the transfer counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:  s.requests.Load(),
		Refused:   s.refused.Load(),
		Completed: s.completed.Load(),
		Failed:    s.failed.Load(),
		Bytes:     s.bytes.Load(),
	}
}

// Serve answers requests until ctx ends, then waits for running transfers
// to finish or time out and returns nil. Serve can be called once.
func (s *Server) Serve(ctx context.Context) error {
	defer s.root.Close()
	srv := tftp.NewServer(s.read, s.write)
	srv.SetBlockSize(s.cfg.BlockSize)
	srv.SetBlockSizeNegotiation(false) // the MTU clamp costs more than it saves; BlockSize caps instead
	srv.SetTimeout(s.cfg.Timeout)
	srv.SetRetries(s.cfg.Retries)
	if s.cfg.SinglePort {
		srv.EnableSinglePort()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.conn) }()
	s.log.Info("tftp: serving", "addr", s.conn.LocalAddr().String(), "root", s.cfg.Root)
	select {
	case <-ctx.Done():
		srv.Shutdown()
		s.conn.Close()
		<-errc
		return nil
	case err := <-errc:
		s.conn.Close()
		return fmt.Errorf("tftp: serve: %w", err)
	}
}

// Resolve checks a requested file name and returns the name relative to the
// root that the server opens. It is pure: it does not touch the file system.
func Resolve(name string) (string, error) {
	c, err := safepath.Clean(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return c, nil
}

// content returns the bytes of the open file f (named rel, described by fi)
// from the cache, reading and caching them when the cache has no current
// copy. ok is false for a file too large to cache.
func (s *Server) content(rel string, f *os.File, fi fs.FileInfo) ([]byte, bool, error) {
	if fi.Size() > maxCachedFile {
		return nil, false, nil
	}
	s.cacheMu.Lock()
	c, hit := s.cache[rel]
	s.cacheMu.Unlock()
	if hit && os.SameFile(c.fi, fi) && c.fi.Size() == fi.Size() && c.fi.ModTime().Equal(fi.ModTime()) {
		return c.data, true, nil
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false, fmt.Errorf("tftp: read %s: %w", rel, err)
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cached{}
	}
	if old, ok := s.cache[rel]; ok {
		s.cached -= int64(len(old.data))
		delete(s.cache, rel)
	}
	if s.cached+int64(len(data)) <= maxCache {
		s.cache[rel] = cached{data: data, fi: fi}
		s.cached += int64(len(data))
	}
	return data, true, nil
}

// open resolves name and opens it below the root; os.Root refuses symbolic
// links that lead outside.
func (s *Server) open(name string) (*os.File, int64, error) {
	rel, err := Resolve(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := s.root.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("tftp: %s: file not found", rel)
		}
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrRefused, rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("tftp: stat %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrRefused, rel)
	}
	return f, fi.Size(), nil
}

func (s *Server) read(name string, rf io.ReaderFrom) error {
	s.requests.Add(1)
	var peer string
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		a := ot.RemoteAddr()
		peer = a.String()
	}
	f, size, err := s.open(name)
	if err != nil {
		s.refused.Add(1)
		s.log.Warn("tftp: read refused", "file", name, "peer", peer, "err", err)
		return err
	}
	defer f.Close()
	var src io.Reader = f
	if fi, err := f.Stat(); err == nil {
		data, ok, err := s.content(name, f, fi)
		if err != nil {
			s.failed.Add(1)
			return err
		}
		if ok {
			src, size = bytes.NewReader(data), int64(len(data))
		}
	}
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(size)
	}
	start := time.Now()
	n, err := rf.ReadFrom(src)
	if err != nil {
		s.failed.Add(1)
		s.log.Warn("tftp: transfer failed", "file", name, "peer", peer, "bytes", n, "err", err)
		return fmt.Errorf("tftp: send %s: %w", name, err)
	}
	s.completed.Add(1)
	s.bytes.Add(uint64(n))
	s.log.Debug("tftp: sent", "file", name, "peer", peer, "bytes", n, "duration", time.Since(start))
	return nil
}

func (s *Server) write(name string, _ io.WriterTo) error {
	s.requests.Add(1)
	s.refused.Add(1)
	s.log.Warn("tftp: write refused", "file", name)
	return fmt.Errorf("%w: server is read-only", ErrRefused)
}
