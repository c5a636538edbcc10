package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcessesUnder lists the processes (other than this one) with a
// command-line argument inside dir: the QEMU machines (pidfile, disk, QMP
// socket), ipmi_sim (its lan.conf) and chassis programs a lab in dir
// started. It is how a test or `ferric-lab down` finds what to stop after a
// crash, without matching processes by name.
func ProcessesUnder(dir string) []int {
	dir, err := filepath.Abs(dir)
	if err != nil || dir == "/" {
		return nil
	}
	prefix := strings.TrimRight(dir, "/") + "/"
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			// QEMU options hold paths inside values (file=DIR/x.raw,...).
			if strings.HasPrefix(a, prefix) || strings.Contains(a, "="+prefix) || strings.Contains(a, ":"+prefix) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// KillUnder stops every process ProcessesUnder(dir) finds: SIGTERM, then
// SIGKILL for those still there after grace. It returns the pids it found.
func KillUnder(dir string, grace time.Duration) []int {
	pids := ProcessesUnder(dir)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		left := 0
		for _, p := range pids {
			if processAlive(p) {
				left++
			}
		}
		if left == 0 {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range pids {
		if processAlive(p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	return pids
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
