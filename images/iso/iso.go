// Package iso builds bootable ISO 9660 images that start a Linux kernel and
// initramfs with given kernel parameters, as Ironic's virtual media boot
// does for its deploy ramdisk: El Torito for BIOS machines (ISOLINUX) and
// an EFI System Partition image for UEFI machines (a standalone GRUB whose
// embedded configuration finds the ISO and reads its grub.cfg). The image
// is hybrid (isohybrid MBR and GPT), so it also boots as a disk.
//
// Images are cached by content: the name of an image is the SHA-256 of
// its inputs (the kernel's and initramfs' bytes, the parameters and the
// optional extra files), and a Builder never builds the same inputs twice,
// even when asked concurrently. Temporary files are removed on every path.
//
// The build runs Debian's tools: xorriso, grub-mkstandalone
// (grub-efi-amd64-bin, grub-common), mkfs.vfat (dosfstools), mmd and mcopy
// (mtools), and ISOLINUX (isolinux, syslinux-common); Tools names their
// locations.
//
//	b := &iso.Builder{Dir: "/var/lib/ferric/iso"}
//	path, err := b.Build(ctx, iso.Input{Kernel: k, Ramdisk: r, Params: "console=ttyS0 ipa-api-url=http://..."})
package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tools locates the programs and boot loader files a build uses.
type Tools struct {
	Xorriso, GrubMkstandalone, MkfsVfat, Mmd, Mcopy string
	// ISOLINUX is isolinux.bin, LDLinux ldlinux.c32 and IsohdpfxMBR the
	// isohybrid MBR (isohdpfx.bin).
	ISOLINUX, LDLinux, IsohdpfxMBR string
}

// DefaultTools are the Debian locations.
var DefaultTools = Tools{
	Xorriso: "xorriso", GrubMkstandalone: "grub-mkstandalone", MkfsVfat: "mkfs.vfat", Mmd: "mmd", Mcopy: "mcopy",
	ISOLINUX:    "/usr/lib/ISOLINUX/isolinux.bin",
	LDLinux:     "/usr/lib/syslinux/modules/bios/ldlinux.c32",
	IsohdpfxMBR: "/usr/lib/ISOLINUX/isohdpfx.bin",
}

// Input is what an image boots.
type Input struct {
	// Kernel and Ramdisk are files: the Linux kernel and its initramfs.
	Kernel, Ramdisk string
	// Params is the kernel command line.
	Params string
	// Files are extra files put on the image, by their path on it (for
	// example a config drive image); they must not be under /boot or
	// /isolinux or /EFI.
	Files map[string][]byte
	// Label is the volume label (at most 32 characters of letters,
	// digits, '-' and '_'); empty means Label. An image carrying a
	// node's network data is labelled ConfigDriveLabel, as a config
	// drive is.
	Label string
}

// label is the image's volume label.
func (in Input) label() string {
	if in.Label == "" {
		return Label
	}
	return in.Label
}

// Builder builds and caches images in Dir.
type Builder struct {
	// Dir holds the images (NAME.iso) and the cached EFI boot image.
	Dir string
	// Tools, the zero value means DefaultTools.
	Tools Tools

	mu       sync.Mutex
	inflight map[string]*build // by key
	sums     map[string]string // "path size mtime" -> sha256 of the file
	builds   int
}

type build struct {
	done chan struct{}
	err  error
}

// Builds reports how many images the Builder has built (not cache hits).
func (b *Builder) Builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds
}

// version changes when the image layout changes, so that cached images of
// an older layout are not reused.
const version = "ferric-iso-1"

// Label is the ISO volume label by default.
const Label = "FERRIC_BOOT"

// ConfigDriveLabel is the label of an OpenStack config drive, which the
// agent (and cloud-init, glean) search for openstack/latest files.
const ConfigDriveLabel = "config-2"

// NetworkDataPath is where a config drive holds the network data.
const NetworkDataPath = "openstack/latest/network_data.json"

// ErrBadInput marks an input that cannot make an image (a missing kernel,
// parameters a boot loader cannot carry).
var ErrBadInput = errors.New("bad input")

// Build returns the path of the image for in, building it unless an image
// of the same inputs exists.
func (b *Builder) Build(ctx context.Context, in Input) (string, error) {
	if err := checkParams(in.Params); err != nil {
		return "", err
	}
	for name := range in.Files {
		if err := checkFileName(name); err != nil {
			return "", err
		}
	}
	if err := checkLabel(in.Label); err != nil {
		return "", err
	}
	key, err := b.key(in)
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.Dir, key+".iso")
	for {
		b.mu.Lock()
		if _, err := os.Stat(out); err == nil {
			b.mu.Unlock()
			return out, nil
		}
		if bl, ok := b.inflight[key]; ok {
			b.mu.Unlock()
			select {
			case <-bl.done:
			case <-ctx.Done():
				return "", fmt.Errorf("iso: waiting for a build: %w", ctx.Err())
			}
			if bl.err != nil {
				return "", bl.err
			}
			continue
		}
		if b.inflight == nil {
			b.inflight = map[string]*build{}
		}
		bl := &build{done: make(chan struct{})}
		b.inflight[key] = bl
		b.builds++
		b.mu.Unlock()
		bl.err = b.build(ctx, in, out)
		b.mu.Lock()
		delete(b.inflight, key)
		b.mu.Unlock()
		close(bl.done)
		if bl.err != nil {
			return "", bl.err
		}
		return out, nil
	}
}

// Remove deletes the image at path if it is one of the Builder's.
func (b *Builder) Remove(p string) error {
	if filepath.Dir(p) != filepath.Clean(b.Dir) || !strings.HasSuffix(p, ".iso") {
		return fmt.Errorf("iso: %s is not an image of %s", p, b.Dir)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

func checkParams(p string) error {
	if len(p) > 2000 {
		return fmt.Errorf("iso: kernel parameters are %d bytes, more than the boot loaders take (2000): %w", len(p), ErrBadInput)
	}
	// Characters GRUB or ISOLINUX would read as syntax, and control
	// characters, cannot be passed on: refuse them rather than boot with
	// other parameters than asked.
	if i := strings.IndexFunc(p, func(r rune) bool {
		return r < 0x20 || r == 0x7f || strings.ContainsRune("\"'$;\\`{}#", r)
	}); i >= 0 {
		return fmt.Errorf("iso: kernel parameters: character %q at %d cannot be passed by the boot loaders: %w", p[i], i, ErrBadInput)
	}
	return nil
}

func checkFileName(name string) error {
	clean := path.Clean("/" + name)
	top := strings.ToLower(strings.SplitN(strings.TrimPrefix(clean, "/"), "/", 2)[0])
	if name == "" || clean == "/" || top == "boot" || top == "isolinux" || top == "efi" || top == "ferric-vmedia" {
		return fmt.Errorf("iso: extra file %q: a plain path outside /boot, /isolinux and /EFI: %w", name, ErrBadInput)
	}
	return nil
}

// key is the SHA-256 of the inputs.
func (b *Builder) key(in Input) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", version)
	for _, f := range []struct{ what, path string }{{"kernel", in.Kernel}, {"ramdisk", in.Ramdisk}} {
		if f.path == "" {
			return "", fmt.Errorf("iso: no %s given: %w", f.what, ErrBadInput)
		}
		sum, err := b.fileSum(f.path)
		if err != nil {
			return "", fmt.Errorf("iso: %s: %w: %w", f.what, err, ErrBadInput)
		}
		fmt.Fprintf(h, "%s %s\x00", f.what, sum)
	}
	fmt.Fprintf(h, "params %q\x00", in.Params)
	fmt.Fprintf(h, "label %q\x00", in.label())
	names := make([]string, 0, len(in.Files))
	for n := range in.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file %q %x\x00", path.Clean("/"+n), sha256.Sum256(in.Files[n]))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileSum hashes a file, remembering the sum by path, size and mtime.
func (b *Builder) fileSum(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	id := fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano())
	b.mu.Lock()
	sum, ok := b.sums[id]
	b.mu.Unlock()
	if ok {
		return sum, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	b.mu.Lock()
	if b.sums == nil {
		b.sums = map[string]string{}
	}
	b.sums[id] = sum
	b.mu.Unlock()
	return sum, nil
}

func (b *Builder) tools() Tools {
	if b.Tools == (Tools{}) {
		return DefaultTools
	}
	return b.Tools
}

// build writes the image for in to out through a temporary directory in
// b.Dir that is removed afterwards.
func (b *Builder) build(ctx context.Context, in Input, out string) error {
	t := b.tools()
	for _, f := range []string{t.ISOLINUX, t.LDLinux, t.IsohdpfxMBR} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("iso: boot loader file missing (Debian packages isolinux, syslinux-common): %w", err)
		}
	}
	for _, p := range []string{t.Xorriso, t.GrubMkstandalone, t.MkfsVfat, t.Mmd, t.Mcopy} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("iso: %s not found (Debian packages xorriso, grub-efi-amd64-bin, dosfstools, mtools): %w", p, err)
		}
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	tmp, err := os.MkdirTemp(b.Dir, ".build-")
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	files := map[string][]byte{
		"isolinux/isolinux.cfg": []byte(isolinuxCfg(in.Params)),
		"boot/grub/grub.cfg":    []byte(grubCfg(in.Params)),
		"ferric-vmedia":         []byte(version + "\n"),
	}
	for n, data := range in.Files {
		files[strings.TrimPrefix(path.Clean("/"+n), "/")] = data
	}
	for n, data := range files {
		if err := writeFile(filepath.Join(root, n), data); err != nil {
			return err
		}
	}
	for src, dst := range map[string]string{in.Kernel: "boot/vmlinuz", in.Ramdisk: "boot/initrd", t.ISOLINUX: "isolinux/isolinux.bin", t.LDLinux: "isolinux/ldlinux.c32"} {
		if err := copyFile(src, filepath.Join(root, dst)); err != nil {
			return err
		}
	}
	if err := b.efiImage(ctx, t, tmp, filepath.Join(root, "boot/efiboot.img")); err != nil {
		return err
	}
	part := out + ".part"
	defer os.Remove(part)
	if err := run(ctx, t.Xorriso, "-as", "mkisofs", "-quiet", "-iso-level", "3", "-R", "-J", "-V", in.label(), "-o", part,
		"-isohybrid-mbr", t.IsohdpfxMBR,
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-eltorito-alt-boot", "-e", "boot/efiboot.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
		root); err != nil {
		return err
	}
	if err := os.Rename(part, out); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

// checkLabel accepts an empty label (the default) or one xorriso keeps as
// given.
func checkLabel(l string) error {
	if len(l) > 32 {
		return fmt.Errorf("iso: label %q is longer than 32 characters: %w", l, ErrBadInput)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("iso: label %q: character %q is not a letter, digit, '-' or '_': %w", l, c, ErrBadInput)
		}
	}
	return nil
}

// isolinuxCfg boots the kernel at once; the parameters follow initrd=.
func isolinuxCfg(params string) string {
	return "DEFAULT boot\nPROMPT 0\nTIMEOUT 0\nLABEL boot\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd " + params + "\n"
}

func grubCfg(params string) string {
	return "set timeout=0\nset default=0\nmenuentry \"ferric\" {\n  linux /boot/vmlinuz " + params + "\n  initrd /boot/initrd\n}\n"
}

// grubEmbedded is the configuration inside the EFI boot loader: it finds
// the image's file system by its marker file and reads its grub.cfg, so
// that the same boot loader serves every image.
const grubEmbedded = "search --no-floppy --file --set=root /ferric-vmedia\nset prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n"

// efiImage writes the FAT EFI System Partition image holding
// EFI/BOOT/BOOTX64.EFI (GRUB) to dst. It is the same for every image, so
// it is built once per Builder directory and copied.
func (b *Builder) efiImage(ctx context.Context, t Tools, tmp, dst string) error {
	cached := filepath.Join(b.Dir, "efiboot-"+version+".img")
	if _, err := os.Stat(cached); err != nil {
		if err := b.buildEFIImage(ctx, t, tmp, cached); err != nil {
			return err
		}
	}
	return copyFile(cached, dst)
}

func (b *Builder) buildEFIImage(ctx context.Context, t Tools, tmp, dst string) error {
	cfg := filepath.Join(tmp, "embedded.cfg")
	if err := writeFile(cfg, []byte(grubEmbedded)); err != nil {
		return err
	}
	efi := filepath.Join(tmp, "bootx64.efi")
	mods := "linux normal iso9660 search search_fs_file configfile part_gpt part_msdos fat echo test efi_gop efi_uga all_video"
	if err := run(ctx, t.GrubMkstandalone, "-O", "x86_64-efi", "--locales=", "--fonts=", "--themes=",
		"--install-modules="+mods, "--modules=linux normal iso9660 search search_fs_file configfile",
		"-o", efi, "boot/grub/grub.cfg="+cfg); err != nil {
		return err
	}
	fi, err := os.Stat(efi)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	img := filepath.Join(tmp, "efiboot.img")
	kib := (fi.Size()/1024 + 512) / 32 * 32 // room for FAT's tables
	if err := run(ctx, t.MkfsVfat, "-n", "FERRIC_EFI", "-C", img, fmt.Sprint(kib)); err != nil {
		return err
	}
	if err := run(ctx, t.Mmd, "-i", img, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	if err := run(ctx, t.Mcopy, "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"); err != nil {
		return err
	}
	// Rename into place: a concurrent build of another image may read it.
	part := fmt.Sprintf("%s.%d.part", dst, time.Now().UnixNano())
	if err := copyFile(img, part); err != nil {
		return err
	}
	if err := os.Rename(part, dst); err != nil {
		os.Remove(part)
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		return fmt.Errorf("iso: %s: %w: %s", filepath.Base(name), err, msg)
	}
	return nil
}

func writeFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("iso: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}
