// Package artifacts builds the test suite's shared artifacts once per run:
// ferric's Go binaries (the static agent, ferric-conductor, ferric-vbmc,
// ferric-testos), the deploy ramdisks (ipa/ramdisk/build.sh, on Debian's
// cloud or generic kernel) and the lab's test OS image
// (test/lab/mkimage.sh, raw and qcow2).
//
// Each artifact lives in a cache directory under a key hashed from its
// inputs: a Go binary under the build ID `go list -export` reports for its
// main package (which covers every source file and module it is built
// from) and its flags; a ramdisk under its agent's key, build.sh and the
// kernel settings; the test OS under ferric-testos's key, mkimage.sh,
// build.sh and the size. The directory is $FERRIC_ARTIFACTS_DIR (`make test`
// sets it, so every package and module of a run shares it), else a
// directory under os.TempDir. A build holds a lock file (flock) so that
// test binaries running in parallel build an artifact once, and publishes
// it with an atomic rename; inside one process a build runs once.
//
// Callers that only read an artifact use its path (or Link it into their
// own directory); callers that write to an image take a copy or a qcow2
// overlay (Overlay).
package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvDir names the cache directory's environment variable.
const EnvDir = "FERRIC_ARTIFACTS_DIR"

// EnvRamdiskDir names a directory holding a prebuilt cloud-kernel deploy
// ramdisk (ferric-deploy.kernel and .initramfs, from `make ramdisk`).
const EnvRamdiskDir = "FERRIC_RAMDISK_DIR"

// Dir is the cache directory: $FERRIC_ARTIFACTS_DIR, else
// $TMPDIR/ferric-test-artifacts-<uid>. It is created if missing.
func Dir() (string, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("ferric-test-artifacts-%d", os.Geteuid()))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifacts: cache directory: %w", err)
	}
	return dir, nil
}

// Root is the main module's directory (the repository's root).
func Root() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRoot(root) {
			return root, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isRoot(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("artifacts: the ferric module's root not found above " + wd)
		}
	}
}

func isRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && bytes.HasPrefix(b, []byte("module github.com/ferric-metal/ferric\n"))
}

// once runs each keyed build once per process.
var (
	mu    sync.Mutex
	calls = map[string]*call{}
)

type call struct {
	done chan struct{}
	val  string
	err  error
}

func once(key string, f func() (string, error)) (string, error) {
	mu.Lock()
	c, ok := calls[key]
	if !ok {
		c = &call{done: make(chan struct{})}
		calls[key] = c
		mu.Unlock()
		c.val, c.err = f()
		close(c.done)
		return c.val, c.err
	}
	mu.Unlock()
	<-c.done
	return c.val, c.err
}

// cached returns dir/kind/key, building it with build (into an empty
// directory, renamed into place) unless it exists; a lock file keeps
// other processes from building the same key at the same time.
func cached(kind, key string, build func(tmp string) error) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	base := filepath.Join(dir, kind)
	final := filepath.Join(base, key)
	pruneOnce.Do(func() { prune(dir, time.Now().Add(-maxAge)) })
	if _, err := os.Stat(final); err == nil {
		now := time.Now()
		os.Chtimes(final, now, now) // in use: keep it from prune
		return final, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(final+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("artifacts: locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	if _, err := os.Stat(final); err == nil {
		return final, nil // another process built it while we waited
	}
	tmp, err := os.MkdirTemp(base, key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return "", fmt.Errorf("artifacts: building %s: %w", kind, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	return final, nil
}

// maxAge is how long an artifact nobody used stays in the cache.
const maxAge = 7 * 24 * time.Hour

var pruneOnce sync.Once

// prune removes the cache's entries (and abandoned builds) last used
// before old: every source change adds binaries, ramdisks and images.
func prune(dir string, old time.Time) {
	kinds, _ := os.ReadDir(dir)
	for _, k := range kinds {
		entries, _ := os.ReadDir(filepath.Join(dir, k.Name()))
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil || !e.IsDir() || fi.ModTime().After(old) {
				continue
			}
			p := filepath.Join(dir, k.Name(), e.Name())
			os.RemoveAll(p)
			os.Remove(p + ".lock")
		}
	}
}

// run runs a command in the repository's root with CGO_ENABLED=0 and env.
func run(env []string, name string, args ...string) error {
	root, err := Root()
	if err != nil {
		return err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// fileHash hashes the repository files rel (paths from the root).
func fileHash(rel ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, r := range rel {
		b, err := os.ReadFile(filepath.Join(root, r))
		if err != nil {
			return "", fmt.Errorf("artifacts: %w", err)
		}
		parts = append(parts, r, string(b))
	}
	return hash(parts...), nil
}

// GoBinary builds the main package pkg (a path from the repository's
// root, e.g. "./conductor/cmd/ferric-conductor") with CGO_ENABLED=0,
// -trimpath and -ldflags=-s -w, and returns the binary's path (named
// after pkg's last element).
func GoBinary(pkg string) (string, error) {
	return once("go "+pkg, func() (string, error) {
		root, err := Root()
		if err != nil {
			return "", err
		}
		key, err := goBinaryKey(root, pkg)
		if err != nil {
			return "", err
		}
		name := filepath.Base(pkg)
		dir, err := cached("go", key, func(tmp string) error {
			return run(nil, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, name), pkg)
		})
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, name), nil
	})
}

// goBinaryKey is the cache key of the binary of main package pkg in the
// module at dir: the build IDs of the compiled archives of pkg and of
// every package it links, which hash all their inputs (sources, flags,
// toolchain) and outputs. The main package's build ID alone is not
// enough: it hashes its dependencies' export data only, so a change
// inside a dependency's function body would find a stale binary.
// Compiling is cached by go, linking (done only on a miss) is not.
func goBinaryKey(dir, pkg string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-trimpath", "-export", "-f", "{{.ImportPath}} {{.BuildID}}", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ids, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("artifacts: go list %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return hash(filepath.Base(pkg), string(ids), runtime.Version(), "-s -w"), nil
}

// Agent is the static ferric-agent (the deploy ramdisk's /init).
func Agent() (string, error) { return GoBinary("./ipa/cmd/ferric-agent") }

// Ramdisk is a deploy kernel and its initramfs.
type Ramdisk struct{ Kernel, Initramfs string }

// Kernel metapackages of DeployRamdisk.
const (
	// CloudKernel is Debian's cloud kernel (`make ramdisk`'s).
	CloudKernel = "linux-image-cloud-amd64"
	// GenericKernel is Debian's generic kernel, with the IPMI drivers an
	// agent reading its BMC in-band needs.
	GenericKernel = "linux-image-amd64"
)

// DeployRamdisk builds ipa/ramdisk/build.sh's ramdisk with this tree's
// agent on the kernel of metapackage meta (CloudKernel when empty). The
// cloud one is taken from $FERRIC_RAMDISK_DIR when that is set.
func DeployRamdisk(meta string) (Ramdisk, error) {
	if meta == "" {
		meta = CloudKernel
	}
	if rd := os.Getenv(EnvRamdiskDir); rd != "" && meta == CloudKernel {
		r := Ramdisk{filepath.Join(rd, "ferric-deploy.kernel"), filepath.Join(rd, "ferric-deploy.initramfs")}
		for _, f := range []string{r.Kernel, r.Initramfs} {
			if _, err := os.Stat(f); err != nil {
				return Ramdisk{}, fmt.Errorf("%s: %w (make ramdisk builds them)", EnvRamdiskDir, err)
			}
		}
		return r, nil
	}
	return BuildRamdisk(meta)
}

// BuildRamdisk is DeployRamdisk built with this tree's agent even when
// $FERRIC_RAMDISK_DIR is set.
func BuildRamdisk(meta string) (Ramdisk, error) {
	if meta == "" {
		meta = CloudKernel
	}
	dir, err := once("ramdisk "+meta, func() (string, error) {
		agent, err := Agent()
		if err != nil {
			return "", err
		}
		scripts, err := fileHash("ipa/ramdisk/build.sh")
		if err != nil {
			return "", err
		}
		key := hash(filepath.Base(filepath.Dir(agent)), scripts, meta, os.Getenv("MODULES"), os.Getenv("OPTIONAL_MODULES"), os.Getenv("TOOLS"))
		return cached("ramdisk", key, func(tmp string) error {
			return run([]string{"KERNEL_META=" + meta}, "ipa/ramdisk/build.sh", agent, tmp)
		})
	})
	if err != nil {
		return Ramdisk{}, err
	}
	return Ramdisk{filepath.Join(dir, "ferric-deploy.kernel"), filepath.Join(dir, "ferric-deploy.initramfs")}, nil
}

// TestOS builds the lab's test OS (test/lab/mkimage.sh) as a raw image of
// sizeMiB and returns its path. Don't write to it: Link, copy or Overlay it.
func TestOS(sizeMiB int) (string, error) {
	dir, err := testOSDir(sizeMiB)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "testos.raw"), nil
}

func testOSDir(sizeMiB int) (string, error) {
	return once(fmt.Sprint("testos ", sizeMiB), func() (string, error) {
		testos, err := GoBinary("./test/cmd/ferric-testos")
		if err != nil {
			return "", err
		}
		scripts, err := fileHash("test/lab/mkimage.sh", "ipa/ramdisk/build.sh")
		if err != nil {
			return "", err
		}
		key := hash(filepath.Base(filepath.Dir(testos)), scripts, fmt.Sprint(sizeMiB))
		return cached("testos", key, func(tmp string) error {
			return run([]string{"TESTOS=" + testos}, "test/lab/mkimage.sh", filepath.Join(tmp, "testos.raw"), fmt.Sprint(sizeMiB))
		})
	})
}

// TestOSQcow2 is TestOS converted to qcow2.
func TestOSQcow2(sizeMiB int) (string, error) {
	raw, err := TestOS(sizeMiB)
	if err != nil {
		return "", err
	}
	dir, err := once("qcow2 "+raw, func() (string, error) {
		return cached("qcow2", filepath.Base(filepath.Dir(raw)), func(tmp string) error {
			return run(nil, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, filepath.Join(tmp, "testos.qcow2"))
		})
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "testos.qcow2"), nil
}

// Link makes dst the file src: a hard link when they share a file system,
// else a copy. Readers only: a hard link shares src's bytes.
func Link(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return Copy(src, dst)
}

// Copy copies src to dst (for a file the caller writes to).
func Copy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fi.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Overlay creates dst, a qcow2 image backed by the read-only image
// backing (format raw or qcow2): writes go to dst, backing is untouched.
func Overlay(backing, format, dst string) error {
	return run(nil, "qemu-img", "create", "-q", "-f", "qcow2", "-F", format, "-b", backing, dst)
}
