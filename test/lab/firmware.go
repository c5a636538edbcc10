package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
)

var bootEntry = regexp.MustCompile(`^\d+: (\S+)`)

// FirmwareBootOrder reads a SeaBIOS debug log (QEMU.FirmwareLog) and returns
// the boot order of the last boot (device paths, first entry first) and how
// many boots printed one.
func FirmwareBootOrder(path string) ([]string, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("lab: %w", err)
	}
	// The firmware may be writing the log: a line without its newline is
	// not read yet, and a list counts once a line after it ends it.
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var last, cur []string
	n := 0
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if in {
			if m := bootEntry.FindStringSubmatch(line); m != nil {
				cur = append(cur, m[1])
				continue
			}
			last, in = cur, false
			n++
		}
		if line == "boot order:" {
			cur, in = nil, true
		}
	}
	return last, n, nil
}
