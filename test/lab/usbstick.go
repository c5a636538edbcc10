package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// HasUSB reports whether the machine has a USB stick slot
// (MachineConfig.USBStick); the Redfish emulator lists a virtual USB stick
// for it then.
func (q *QEMU) HasUSB() bool { return q.cfg.USBStick }

// USBMedia returns the image in the machine's USB stick slot ("" when
// empty).
func (q *QEMU) USBMedia() string {
	b, err := os.ReadFile(q.path(".usbmedia"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// InsertUSB puts the disk image at path in the machine's USB stick slot,
// read-only: at once over QMP when it runs, else at its next start.
func (q *QEMU) InsertUSB(ctx context.Context, path string) error {
	if !q.cfg.USBStick {
		return fmt.Errorf("lab: machine %s has no USB stick slot", q.cfg.Name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if strings.ContainsAny(abs, ",\n") {
		return fmt.Errorf("lab: media path %q: no commas or newlines", abs)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := q.Pid(); ok {
		if _, err := QMP(ctx, q.path(".qmp"), "blockdev-change-medium", map[string]any{"id": "usb0", "filename": abs, "format": "raw", "read-only-mode": "read-only"}); err != nil {
			return fmt.Errorf("lab: machine %s: insert USB stick: %w", q.cfg.Name, err)
		}
	}
	if err := os.WriteFile(q.path(".usbmedia"), []byte(abs+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// EjectUSB empties the machine's USB stick slot.
func (q *QEMU) EjectUSB(ctx context.Context) error {
	if !q.cfg.USBStick {
		return fmt.Errorf("lab: machine %s has no USB stick slot", q.cfg.Name)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := q.Pid(); ok {
		if _, err := QMP(ctx, q.path(".qmp"), "eject", map[string]any{"id": "usb0", "force": true}); err != nil {
			return fmt.Errorf("lab: machine %s: eject USB stick: %w", q.cfg.Name, err)
		}
	}
	if err := os.Remove(q.path(".usbmedia")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
