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
	var last []string
	n := 0
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "boot order:" {
			n++
			last, in = nil, true
			continue
		}
		if in {
			if m := bootEntry.FindStringSubmatch(line); m != nil {
				last = append(last, m[1])
				continue
			}
			in = false
		}
	}
	return last, n, nil
}
