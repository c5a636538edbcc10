package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
)

// UEFI HTTP boot from a URI a BMC is given (Redfish Boot.HttpBootUri):
// OVMF reads no such setting from QEMU, but its boot manager boots a load
// option whose device path is a lone URI node (UEFI's short-form URI
// device path), expanding it to a NIC whose HTTP boot client loads it
// (over DHCP's address, the URI taken from the option). SetOVMFHTTPBoot
// writes such an option (Boot0080) and BootNext into a machine's OVMF
// variable store file while the machine is off. The store is edk2's
// authenticated variable store in a firmware volume: a volume header,
// the variable store header, then variables (a 60-byte header, the
// UTF-16 name, the data, each aligned to 4 bytes) up to the first free
// (0xff) byte; a replaced variable is marked deleted, as edk2 does.

// efiGlobalVariable is EFI_GLOBAL_VARIABLE_GUID
// (8be4df61-93ca-11d2-aa0d-00e098032b8c) in its on-disk byte order.
var efiGlobalVariable = []byte{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}

// authVariableStore is gEfiAuthenticatedVariableGuid
// (aaf32c78-947b-439a-a180-2e144ec37792), the store's format GUID.
var authVariableStore = []byte{0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92}

const (
	varHeaderSize = 60
	varStartID    = 0x55aa
	varAdded      = 0x3f
	varDeleted    = 0x3c // added, then in deleted transition and deleted
	// httpBootOption is the number of the boot option SetOVMFHTTPBoot
	// writes (Boot0080).
	httpBootOption = 0x80
	// Non-volatile, boot service and runtime access.
	varAttrNVBSRT = 0x7
)

// SetOVMFHTTPBoot writes into the OVMF variable store file vars a boot
// option that HTTP-boots uri, and BootNext naming it, so that the
// machine's next start boots uri (once: the firmware deletes BootNext).
func SetOVMFHTTPBoot(vars, uri string) error {
	b, err := os.ReadFile(vars)
	if err != nil {
		return fmt.Errorf("lab: OVMF variables: %w", err)
	}
	out, err := setHTTPBootVars(b, uri)
	if err != nil {
		return fmt.Errorf("lab: OVMF variables %s: %w", vars, err)
	}
	tmp := vars + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return os.Rename(tmp, vars)
}

// setHTTPBootVars returns store b with Boot0080 (HTTP boot of uri) and
// BootNext 0x0080 set.
func setHTTPBootVars(b []byte, uri string) ([]byte, error) {
	if uri == "" || len(uri) > 2048 {
		return nil, fmt.Errorf("HTTP boot URI %q: want a URI of at most 2048 bytes", uri)
	}
	b = bytes.Clone(b)
	if len(b) < 0x48 || string(b[40:44]) != "_FVH" {
		return nil, errors.New("not a firmware volume (no _FVH signature)")
	}
	store := int(binary.LittleEndian.Uint16(b[48:]))
	if store+28 > len(b) || !bytes.Equal(b[store:store+16], authVariableStore) {
		return nil, errors.New("no authenticated variable store after the volume header")
	}
	end := store + int(binary.LittleEndian.Uint32(b[store+16:]))
	if end > len(b) {
		return nil, errors.New("variable store larger than the file")
	}
	// Walk the variables: mark earlier Boot0080 and BootNext deleted and
	// find the free space.
	name0080, nameNext := utf16z(fmt.Sprintf("Boot%04X", httpBootOption)), utf16z("BootNext")
	off := store + 28
	for off+varHeaderSize <= end && binary.LittleEndian.Uint16(b[off:]) == varStartID {
		ns, ds := int(binary.LittleEndian.Uint32(b[off+36:])), int(binary.LittleEndian.Uint32(b[off+40:]))
		next := align4(off + varHeaderSize + ns + ds)
		if next > end {
			return nil, fmt.Errorf("variable at %#x runs past the store", off)
		}
		name := b[off+varHeaderSize : off+varHeaderSize+ns]
		if b[off+2] == varAdded && bytes.Equal(b[off+44:off+60], efiGlobalVariable) &&
			(bytes.Equal(name, name0080) || bytes.Equal(name, nameNext)) {
			b[off+2] = varDeleted
		}
		off = next
	}
	// The option: active, its device path a URI node and the end node.
	dp := binary.LittleEndian.AppendUint16([]byte{0x03, 0x18}, uint16(4+len(uri)))
	dp = append(append(dp, uri...), 0x7f, 0xff, 0x04, 0x00)
	opt := binary.LittleEndian.AppendUint32(nil, 1)
	opt = binary.LittleEndian.AppendUint16(opt, uint16(len(dp)))
	opt = append(append(opt, utf16z("ferric lab HTTP boot")...), dp...)
	next := binary.LittleEndian.AppendUint16(nil, httpBootOption)
	for _, v := range []struct{ name, data []byte }{{name0080, opt}, {nameNext, next}} {
		rec := make([]byte, varHeaderSize, varHeaderSize+len(v.name)+len(v.data))
		binary.LittleEndian.PutUint16(rec[0:], varStartID)
		rec[2] = varAdded
		binary.LittleEndian.PutUint32(rec[4:], varAttrNVBSRT)
		binary.LittleEndian.PutUint32(rec[36:], uint32(len(v.name)))
		binary.LittleEndian.PutUint32(rec[40:], uint32(len(v.data)))
		copy(rec[44:], efiGlobalVariable)
		rec = append(append(rec, v.name...), v.data...)
		if off+len(rec) > end || !allFF(b[off:off+len(rec)]) {
			return nil, errors.New("no free space left in the variable store")
		}
		copy(b[off:], rec)
		off = align4(off + len(rec))
	}
	return b, nil
}

func utf16z(s string) []byte {
	var out []byte
	for _, u := range append(utf16.Encode([]rune(s)), 0) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

func align4(n int) int { return (n + 3) &^ 3 }

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// SetHTTPBootURI has a UEFI machine boot uri over UEFI HTTP boot at each
// power-on from now on (the variable store is written before QEMU starts:
// a running machine's is QEMU's), until it is set to "" again.
func (q *QEMU) SetHTTPBootURI(_ context.Context, uri string) error {
	if q.cfg.Firmware != "uefi" && uri != "" {
		return fmt.Errorf("lab: machine %s: UEFI HTTP boot needs the uefi firmware", q.cfg.Name)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if uri == "" {
		if err := os.Remove(q.path(".httpboot")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lab: %w", err)
		}
		return nil
	}
	if strings.ContainsAny(uri, "\n") {
		return fmt.Errorf("lab: HTTP boot URI %q: no newlines", uri)
	}
	if err := os.WriteFile(q.path(".httpboot"), []byte(uri+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// HTTPBootURI returns the URI the machine HTTP-boots at power-on ("" for
// none).
func (q *QEMU) HTTPBootURI() string {
	b, err := os.ReadFile(q.path(".httpboot"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
