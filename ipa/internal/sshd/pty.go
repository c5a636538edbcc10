package sshd

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// ptyReq is the payload of a "pty-req" (RFC 4254 6.2).
type ptyReq struct {
	Term                 string
	Cols, Rows, WPx, HPx uint32
	Modes                string
}

// winSize is the payload of a "window-change" (RFC 4254 6.7).
type winSize struct {
	Cols, Rows, WPx, HPx uint32
}

// openPTY opens a pseudo-terminal pair from /dev/ptmx (devpts).
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

func setSize(f *os.File, cols, rows uint32) {
	if cols == 0 || rows == 0 || cols > 0xffff || rows > 0xffff {
		return
	}
	unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
}

// runPTY runs cmd on a new pseudo-terminal wired to ch; an error means no
// pty could be made and cmd did not start.
func (s *Server) runPTY(ch ssh.Channel, cmd *exec.Cmd, tty *ptyReq, winch chan winSize) (int, error) {
	master, slave, err := openPTY()
	if err != nil {
		return 0, err
	}
	defer master.Close()
	setSize(master, tty.Cols, tty.Rows)
	cmd.Env = append(cmd.Env, "TERM="+tty.Term)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case w := <-winch:
				setSize(master, w.Cols, w.Rows)
			case <-done:
				return
			}
		}
	}()
	go io.Copy(master, ch)
	out := make(chan struct{})
	go func() { io.Copy(ch, master); close(out) }() // ends with EIO once the shell exits
	code := exitCode(cmd.Wait())
	select { // a background process may keep the terminal open
	case <-out:
	case <-time.After(2 * time.Second):
	}
	return code, nil
}
