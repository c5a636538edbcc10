// Package console serves nodes' serial consoles on TCP ports, as Ironic's
// socat console interfaces do (ipmitool-socat): one listener per node, and
// for each client that connects, a process attached to the machine's
// serial console (`ipmitool ... sol activate`) on a pseudo-terminal, its
// output copied to the client and the client's keystrokes to it.
//
// It is hand-written rather than a socat child because the conductor then
// owns every piece with its own bounds and no extra binary: one client at a
// time per node (socat's fork,max-children=1; a second client is told the
// console is busy instead of waiting in the listen queue), an idle timeout
// in both directions (socat -T, Ironic's [console]terminal_timeout), the
// attached process and its group killed when the client leaves, the
// console is stopped or the conductor ends, and no PID files to reconcile
// after a crash: a console lives exactly as long as the conductor process.
// Ports come from the node (ipmi_terminal_port) or from a configured range
// (Ironic's [console]port_range), checked free by binding them.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of Config.
const (
	// DefaultIdleTimeout is Ironic's [console]terminal_timeout.
	DefaultIdleTimeout = 600 * time.Second
	// DefaultKillTimeout is how long a stopped process gets between
	// SIGTERM and SIGKILL (Ironic's [console]kill_timeout).
	DefaultKillTimeout = time.Second
	// DefaultDetachTimeout bounds the command that drops a session left
	// on the BMC (sol deactivate).
	DefaultDetachTimeout = 15 * time.Second
)

// ErrNoFreePort is returned when no port of the range is free.
var ErrNoFreePort = errors.New("no free port in the console port range")

// busyMessage is what a second client reads before the server closes it.
const busyMessage = "console: another client is attached to this console; try again later\r\n"

// Command is a program to run: its path, arguments and extra environment
// ("KEY=value", added to the conductor's).
type Command struct {
	Path string
	Args []string
	Env  []string
}

// Config configures a Server.
type Config struct {
	// Address is the IP address the consoles listen on and that their
	// URLs give (Ironic's [console]socat_address). Default 127.0.0.1.
	Address string
	// PortMin and PortMax are the range ports are taken from for nodes
	// that ask for none (Ironic's [console]port_range); 0: no range.
	PortMin, PortMax int
	// IdleTimeout ends a client's session after that long without a
	// byte either way (default DefaultIdleTimeout; negative: never).
	IdleTimeout time.Duration
	// KillTimeout is the wait between SIGTERM and SIGKILL.
	KillTimeout time.Duration
	// DetachTimeout bounds a run of the detach command.
	DetachTimeout time.Duration
	Log           *slog.Logger
}

// Server runs the consoles of the nodes this conductor serves.
type Server struct {
	cfg      Config
	mu       sync.Mutex
	consoles map[string]*nodeConsole
	closed   bool
}

// New returns a server with no console running.
func New(cfg Config) *Server {
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1"
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = DefaultKillTimeout
	}
	if cfg.DetachTimeout <= 0 {
		cfg.DetachTimeout = DefaultDetachTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Server{cfg: cfg, consoles: map[string]*nodeConsole{}}
}

// HasRange reports whether ports can be allocated for nodes that give none.
func (s *Server) HasRange() bool { return s.cfg.PortMin > 0 && s.cfg.PortMax >= s.cfg.PortMin }

// URL is the address clients connect to for port: tcp://address:port.
func (s *Server) URL(port int) string {
	return "tcp://" + net.JoinHostPort(s.cfg.Address, strconv.Itoa(port))
}

// Port returns the port of the node's running console.
func (s *Server) Port(uuid string) (port int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.consoles[uuid]
	if !ok {
		return 0, false
	}
	return c.port, true
}

// Nodes returns the nodes whose console runs, sorted.
func (s *Server) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.consoles))
	for u := range s.consoles {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// Start serves the node's console on port (0: a free port of the range)
// and returns the port. A console already running for the node is stopped
// first, as Ironic does; detach runs once before listening, to drop a
// session a previous client left on the BMC (its failure is ignored), and
// again before each client's attach.
func (s *Server) Start(ctx context.Context, uuid string, port int, attach, detach Command) (int, error) {
	s.Stop(ctx, uuid)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("console: node %s: the conductor is stopping", uuid)
	}
	ln, err := s.listen(port)
	if err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("console: node %s: %w", uuid, err)
	}
	c := &nodeConsole{srv: s, uuid: uuid, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, attach: attach, detach: detach, done: make(chan struct{})}
	s.consoles[uuid] = c
	s.mu.Unlock()
	c.runDetach(ctx)
	go c.serve()
	s.cfg.Log.Info("console: started", "node", uuid, "url", s.URL(c.port))
	return c.port, nil
}

// listen binds the given port, or the first free one of the range; the
// caller holds s.mu.
func (s *Server) listen(port int) (net.Listener, error) {
	if port != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Address, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("cannot listen on console port %d: %w", port, err)
		}
		return ln, nil
	}
	if !s.HasRange() {
		return nil, fmt.Errorf("no console port given and no console port range configured")
	}
	used := map[int]bool{}
	for _, c := range s.consoles {
		used[c.port] = true
	}
	for p := s.cfg.PortMin; p <= s.cfg.PortMax; p++ {
		if used[p] {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Address, strconv.Itoa(p))); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("%w %d:%d on %s", ErrNoFreePort, s.cfg.PortMin, s.cfg.PortMax, s.cfg.Address)
}

// Stop ends the node's console: the listener, the client and its attached
// process; then detach runs to drop the BMC's session. It reports whether
// a console was running.
func (s *Server) Stop(ctx context.Context, uuid string) bool {
	s.mu.Lock()
	c, ok := s.consoles[uuid]
	delete(s.consoles, uuid)
	s.mu.Unlock()
	if !ok {
		return false
	}
	c.close()
	c.runDetach(ctx)
	s.cfg.Log.Info("console: stopped", "node", uuid)
	return true
}

// Close stops every console and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	cs := make([]*nodeConsole, 0, len(s.consoles))
	for _, c := range s.consoles {
		cs = append(cs, c)
	}
	s.consoles = map[string]*nodeConsole{}
	s.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// nodeConsole is one node's listener and at most one client session.
type nodeConsole struct {
	srv            *Server
	uuid           string
	ln             net.Listener
	port           int
	attach, detach Command
	done           chan struct{} // closed by close

	mu      sync.Mutex
	session *session
	wg      sync.WaitGroup
}

func (c *nodeConsole) close() {
	c.mu.Lock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	sess := c.session
	c.mu.Unlock()
	_ = c.ln.Close()
	if sess != nil {
		sess.end()
	}
	c.wg.Wait()
}

func (c *nodeConsole) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return // closed
		}
		c.mu.Lock()
		stopped := false
		select {
		case <-c.done:
			stopped = true
		default:
		}
		if stopped || c.session != nil {
			c.mu.Unlock()
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(conn, busyMessage)
			_ = conn.Close()
			continue
		}
		sess := &session{c: c, conn: conn, ended: make(chan struct{})}
		c.session = sess
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			sess.run()
			c.mu.Lock()
			if c.session == sess {
				c.session = nil
			}
			c.mu.Unlock()
		}()
	}
}

// runDetach runs the detach command, bounded; its failure is only logged
// (sol deactivate fails when no session is active).
func (c *nodeConsole) runDetach(ctx context.Context) {
	if c.detach.Path == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.srv.cfg.DetachTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.detach.Path, c.detach.Args...)
	cmd.Env = append(os.Environ(), c.detach.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.srv.cfg.Log.Debug("console: detach", "node", c.uuid, "err", err, "output", string(out))
	}
}

// session is one client attached to the console through one process.
type session struct {
	c     *nodeConsole
	conn  net.Conn
	once  sync.Once
	ended chan struct{}
	mu    sync.Mutex
	last  time.Time
}

// end closes the client and kills the attached process (its group).
func (s *session) end() {
	s.once.Do(func() {
		close(s.ended)
		_ = s.conn.Close()
	})
}

func (s *session) touch() {
	s.mu.Lock()
	s.last = time.Now()
	s.mu.Unlock()
}

func (s *session) idle() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.last)
}

func (s *session) run() {
	log := s.c.srv.cfg.Log
	defer s.end()
	s.c.runDetach(context.Background())
	master, slave, err := openPTY()
	if err != nil {
		log.Error("console: pseudo-terminal", "node", s.c.uuid, "err", err)
		return
	}
	defer master.Close()
	cmd := exec.Command(s.c.attach.Path, s.c.attach.Args...)
	cmd.Env = append(os.Environ(), s.c.attach.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = cmd.Start()
	_ = slave.Close()
	if err != nil {
		log.Error("console: start the attach command", "node", s.c.uuid, "err", err)
		_, _ = fmt.Fprintf(s.conn, "console: cannot attach: %v\r\n", err)
		return
	}
	log.Info("console: client attached", "node", s.c.uuid, "client", s.conn.RemoteAddr().String(), "pid", cmd.Process.Pid)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.touch()
	go s.copy(s.conn, master) // process output to the client
	go s.copy(master, s.conn) // keystrokes to the process
	var tick <-chan time.Time
	if t := s.c.srv.cfg.IdleTimeout; t > 0 {
		tk := time.NewTicker(min(t/4+time.Millisecond, time.Second))
		defer tk.Stop()
		tick = tk.C
	}
	for waiting := true; waiting; {
		select {
		case <-exited:
			waiting = false
		case <-s.ended:
			waiting = false
		case <-tick:
			if s.idle() >= s.c.srv.cfg.IdleTimeout {
				log.Info("console: idle client closed", "node", s.c.uuid, "after", s.c.srv.cfg.IdleTimeout)
				waiting = false
			}
		}
	}
	s.end()
	kill(cmd.Process.Pid, exited, s.c.srv.cfg.KillTimeout)
	log.Info("console: client detached", "node", s.c.uuid)
}

// copy moves bytes one way until either side fails, then ends the
// session.
func (s *session) copy(dst io.Writer, src io.Reader) {
	defer s.end()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			s.touch()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// kill ends a process group: SIGTERM, then SIGKILL after wait.
func kill(pid int, exited <-chan struct{}, wait time.Duration) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(wait):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}

// openPTY opens a pseudo-terminal pair: the master (pollable, so that
// closing it ends a blocked read) and the slave for the child.
func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console: open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		_ = unix.Close(fd)
		return nil, nil, fmt.Errorf("console: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		_ = unix.Close(fd)
		return nil, nil, fmt.Errorf("console: pty number: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, nil, fmt.Errorf("console: pty: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	slave, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		_ = master.Close()
		return nil, nil, fmt.Errorf("console: open pty slave: %w", err)
	}
	return master, slave, nil
}

// ParseRange reads a port range "FIRST:LAST" (Ironic's [console]port_range
// form; "" is no range).
func ParseRange(s string) (first, last int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ":")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("console: port range %q: want FIRST:LAST, two port numbers 1-65535 in order", s)
	}
	return first, last, nil
}
