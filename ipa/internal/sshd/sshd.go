// Package sshd is the rescue ramdisk's SSH server: once a rescue sets the
// rescue user's password, the agent serves SSH so that the user logs in
// with it (what IPA's rescue ramdisk does with openssh and a
// PasswordAuthentication sshd). It is built on golang.org/x/crypto/ssh,
// inside the agent's one static binary.
//
// Only password authentication of one user is offered; the host key is
// made at start (ed25519, as dropbear -R does). A session runs the
// requested command (exec) or a login shell (shell) with the server's
// rights: the ramdisk's root, as IPA's rescue user has passwordless sudo.
// With a pty-req the command gets a pseudo-terminal (devpts), else pipes.
package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults.
const (
	DefaultListen = ":22"
	// DefaultShell runs commands (busybox's sh in the ramdisk).
	DefaultShell = "/bin/sh"
	// MaxSessions bounds concurrent connections.
	MaxSessions = 16
)

// Config configures a Server.
type Config struct {
	Listen string
	// User is the one login accepted.
	User string
	// CheckPassword reports whether password is User's (read at each
	// login: a later rescue's password replaces it).
	CheckPassword func(password string) bool
	// Shell runs "exec" commands with -c and is the login shell.
	Shell string
	// Home is the sessions' working directory and HOME.
	Home string
	Log  *slog.Logger
}

// Server is a running SSH server.
type Server struct {
	cfg  Config
	conf *ssh.ServerConfig
	ln   net.Listener
	sem  chan struct{}
	wg   sync.WaitGroup
}

// Listen makes a host key and listens on cfg.Listen.
func Listen(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Shell == "" {
		cfg.Shell = DefaultShell
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.User == "" || cfg.CheckPassword == nil {
		return nil, errors.New("sshd: a user and a password check are required")
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	s := &Server{cfg: cfg, sem: make(chan struct{}, MaxSessions)}
	s.conf = &ssh.ServerConfig{
		MaxAuthTries: 6,
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == cfg.User && cfg.CheckPassword(string(pw)) {
				cfg.Log.Info("sshd: login", "user", c.User(), "from", c.RemoteAddr().String())
				return &ssh.Permissions{}, nil
			}
			cfg.Log.Warn("sshd: refused login", "user", c.User(), "from", c.RemoteAddr().String())
			time.Sleep(time.Second) // slows password guessing
			return nil, errors.New("sshd: wrong user or password")
		},
	}
	s.conf.AddHostKey(signer)
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	cfg.Log.Info("sshd: listening", "addr", s.ln.Addr().String(), "user", cfg.User,
		"host_key", ssh.FingerprintSHA256(signer.PublicKey()))
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until ctx ends, then closes the listener and
// waits for the sessions.
func (s *Server) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); s.ln.Close() }()
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sshd: %w", err)
		}
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close() // too many sessions
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.handle(ctx, c)
		}()
	}
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.conf)
	if err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

// session serves one session channel: env, pty-req and window-change
// are noted; exec or shell runs the command and ends the channel with its
// exit status.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	var tty *ptyReq
	var winch chan winSize
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "pty-req":
			var p ptyReq
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			tty = &p
			winch = make(chan winSize, 4)
			req.Reply(true, nil)
		case "window-change":
			var w winSize
			if ssh.Unmarshal(req.Payload, &w) == nil && winch != nil {
				select {
				case winch <- w:
				default:
				}
			}
		case "exec", "shell":
			args := []string{"-l"}
			if req.Type == "exec" {
				var cmd struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
					req.Reply(false, nil)
					continue
				}
				args = []string{"-c", cmd.Command}
			}
			if _, err := os.Stat(s.cfg.Shell); err != nil {
				req.Reply(true, nil)
				fmt.Fprintf(ch.Stderr(), "rescue: no shell %s in this ramdisk\r\n", s.cfg.Shell)
				sendStatus(ch, 127)
				return
			}
			req.Reply(true, nil)
			go drain(reqs, winch)
			code := s.run(ch, args, env, tty, winch)
			sendStatus(ch, code)
			return
		default:
			req.Reply(false, nil)
		}
	}
}

// drain keeps answering the channel's requests once the command runs
// (window changes go to the pty).
func drain(reqs <-chan *ssh.Request, winch chan winSize) {
	for req := range reqs {
		if req.Type == "window-change" && winch != nil {
			var w winSize
			if ssh.Unmarshal(req.Payload, &w) == nil {
				select {
				case winch <- w:
				default:
				}
			}
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}

func sendStatus(ch ssh.Channel, code int) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(code))
	ch.SendRequest("exit-status", false, b)
}

// run runs the shell with args, wired to ch (a pty when tty), and
// returns its exit status.
func (s *Server) run(ch ssh.Channel, args, env []string, tty *ptyReq, winch chan winSize) int {
	cmd := exec.Command(s.cfg.Shell, args...)
	home := s.cfg.Home
	if home == "" {
		home = "/"
	}
	os.MkdirAll(home, 0o700)
	cmd.Dir = home
	cmd.Env = append([]string{"HOME=" + home, "USER=" + s.cfg.User, "LOGNAME=" + s.cfg.User, "SHELL=" + s.cfg.Shell,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	if tty != nil {
		code, err := s.runPTY(ch, cmd, tty, winch)
		if err == nil {
			return code
		}
		s.cfg.Log.Warn("sshd: no pseudo-terminal, running on pipes", "err", err)
		cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
		cmd.Dir, cmd.Env = home, append(cmd.Env, "TERM="+tty.Term)
	}
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 255
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "rescue: %v\r\n", err)
		return 127
	}
	go func() { io.Copy(stdin, ch); stdin.Close() }()
	return exitCode(cmd.Wait())
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 255
}
