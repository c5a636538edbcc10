package artifacts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCachedBuildsOnce: callers racing for one key (each with its own lock
// file descriptor, as separate test binaries have) build it once; the
// others wait for it and get the same directory; a failed build leaves
// nothing behind and the next caller builds again.
func TestCachedBuildsOnce(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	var builds atomic.Int32
	build := func(tmp string) error {
		builds.Add(1)
		time.Sleep(100 * time.Millisecond) // the others reach the lock meanwhile
		return os.WriteFile(filepath.Join(tmp, "out"), []byte("built"), 0o644)
	}
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	for i := range dirs {
		wg.Go(func() {
			d, err := cached("kind", "key", build)
			if err != nil {
				t.Error(err)
			}
			dirs[i] = d
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("built %d times; want 1", n)
	}
	for _, d := range dirs {
		if d != dirs[0] {
			t.Fatalf("directories %q; want one", dirs)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0], "out")); err != nil || string(b) != "built" {
		t.Errorf("out: %q, %v", b, err)
	}

	if _, err := cached("kind", "bad", func(string) error { return fmt.Errorf("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failed build: %v; want its error", err)
	}
	left, _ := filepath.Glob(filepath.Join(os.Getenv(EnvDir), "kind", "bad*"))
	for _, f := range left {
		if !strings.HasSuffix(f, ".lock") {
			t.Errorf("failed build left %s", f)
		}
	}
	if _, err := cached("kind", "bad", build); err != nil {
		t.Errorf("rebuild after a failure: %v", err)
	}
}

// TestGoBinaryKey: a Go binary is built into the cache once, and a second
// process (go test's other packages) finds it under the same key without
// building; the binary runs.
func TestGoBinaryKey(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds a Go binary")
	}
	t.Setenv(EnvDir, t.TempDir())
	bin, err := GoBinary("./test/cmd/ferric-testos")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s: %v %v", bin, fi, err)
	}
	again, err := GoBinary("./test/cmd/ferric-testos")
	if err != nil || again != bin {
		t.Fatalf("second call: %s, %v; want %s", again, err, bin)
	}
	// Another process: the helper below, run from this test binary.
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoBinaryKeyHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "ARTIFACTS_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "binary="+bin+"\n") {
		t.Errorf("helper found another binary than %s:\n%s", bin, out)
	}
	fi2, err := os.Stat(bin)
	if err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the second process rebuilt %s", bin)
	}
}

func TestGoBinaryKeyHelper(t *testing.T) {
	if os.Getenv("ARTIFACTS_HELPER") == "" {
		t.Skip("helper of TestGoBinaryKey")
	}
	bin, err := GoBinary("./test/cmd/ferric-testos")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("binary=%s\n", bin)
}

// TestLinkAndCopy: Link shares the bytes, Copy gives a file of one's own.
func TestLinkAndCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("image"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := Link(src, filepath.Join(dir, "a", "linked")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "linked")); err != nil || string(b) != "image" {
		t.Errorf("linked: %q, %v", b, err)
	}
	cp := filepath.Join(dir, "copy")
	if err := Copy(src, cp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, []byte("written"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(src); string(b) != "image" {
		t.Errorf("writing the copy changed the source: %q", b)
	}
}

// TestPrune: entries unused for maxAge go, the others stay.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	oldDir, newDir := filepath.Join(dir, "go", "old"), filepath.Join(dir, "go", "new")
	for _, d := range []string{oldDir, newDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d+".lock", nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-maxAge - time.Hour)
	if err := os.Chtimes(oldDir, past, past); err != nil {
		t.Fatal(err)
	}
	prune(dir, time.Now().Add(-maxAge))
	if _, err := os.Stat(oldDir); !os.IsNotExist(err) {
		t.Errorf("old entry: %v; want removed", err)
	}
	if _, err := os.Stat(oldDir + ".lock"); !os.IsNotExist(err) {
		t.Errorf("old entry's lock: %v; want removed", err)
	}
	if _, err := os.Stat(newDir); err != nil {
		t.Errorf("recent entry: %v", err)
	}
}

// TestGoBinaryKeyFollowsDependencies: a change inside a dependency's
// function body (which leaves the main package's own build ID as it was)
// gives the binary a new key; the same sources give the same key.
func TestGoBinaryKeyFollowsDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: compiles a module")
	}
	dir := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// main imports mid, mid imports dep: main's own build ID hashes mid's
	// export data, which a change inside dep.N leaves as it was.
	dep := func(n string) string {
		return "package dep\n\n//go:noinline\nfunc N(xs []int) int { return len(xs) + " + n + " }\n"
	}
	write("go.mod", "module example.com/keytest\n\ngo 1.22\n")
	write("cmd/app/main.go", "package main\n\nimport \"example.com/keytest/mid\"\n\nfunc main() { println(mid.M()) }\n")
	write("mid/mid.go", "package mid\n\nimport \"example.com/keytest/dep\"\n\n//go:noinline\nfunc M() int { return dep.N(nil) }\n")
	write("dep/dep.go", dep("1"))
	key := func() string {
		t.Helper()
		k, err := goBinaryKey(dir, "./cmd/app")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1 := key()
	if again := key(); again != k1 {
		t.Fatalf("same sources, keys %s and %s", k1, again)
	}
	write("dep/dep.go", dep("2"))
	if k2 := key(); k2 == k1 {
		t.Fatalf("key %s kept after dep.N's body changed: a stale binary would be used", k1)
	}
}
