package sshd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func start(t *testing.T, shell string) string {
	t.Helper()
	s, err := Listen(Config{Listen: "127.0.0.1:0", User: "rescue", Shell: shell, Home: t.TempDir(),
		CheckPassword: func(pw string) bool { return pw == "s3cret pw" },
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s.Addr().String()
}

func dial(addr, user, pw string) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pw)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
}

// A client logs in with the user's password and runs commands: their
// output, stdin and exit status come through, with or without a
// pseudo-terminal; a wrong password or user is refused.
func TestLoginAndRun(t *testing.T) {
	addr := start(t, "/bin/sh")
	for _, c := range []struct{ name, user, pw string }{
		{"wrong password", "rescue", "guess"}, {"wrong user", "root", "s3cret pw"},
	} {
		if cl, err := dial(addr, c.user, c.pw); err == nil {
			cl.Close()
			t.Errorf("%s: login accepted", c.name)
		}
	}
	cl, err := dial(addr, "rescue", "s3cret pw")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer cl.Close()
	for _, c := range []struct {
		name, cmd, stdin string
		pty              bool
		want             string
		code             int
	}{
		{"exec", `echo "hello $USER"; echo err >&2`, "", false, "hello rescue\n", 0},
		{"exit status", "exit 3", "", false, "", 3},
		{"stdin", "tr a-z A-Z", "shout\n", false, "SHOUT\n", 0},
		{"pty", `test -t 0 && echo "tty $TERM"`, "", true, "tty xterm", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			sess, err := cl.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			var out, errb bytes.Buffer
			sess.Stdout, sess.Stderr = &out, &errb
			if c.stdin != "" {
				sess.Stdin = strings.NewReader(c.stdin)
			}
			if c.pty {
				if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
					t.Fatal(err)
				}
			}
			err = sess.Run(c.cmd)
			code := 0
			var ee *ssh.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if c.pty {
				got = strings.TrimSpace(got)
			}
			if got != c.want || code != c.code {
				t.Errorf("Run(%q) = %q, status %d, want %q, %d", c.cmd, got, code, c.want, c.code)
			}
			if c.name == "exec" && errb.String() != "err\n" {
				t.Errorf("stderr %q, want err", errb.String())
			}
		})
	}
}

// A ramdisk without the shell says so and the command ends with 127.
func TestNoShell(t *testing.T) {
	cl, err := dial(start(t, "/nonexistent/sh"), "rescue", "s3cret pw")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sess, _ := cl.NewSession()
	var errb bytes.Buffer
	sess.Stderr = &errb
	err = sess.Run("true")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 127 || !strings.Contains(errb.String(), "no shell") {
		t.Errorf("Run without a shell = %v, stderr %q; want status 127 saying no shell", err, errb.String())
	}
}
