// Package ramdisklogs keeps the logs the conductor collects from a
// node's ramdisk agent (log.collect_system_logs), as Ironic's
// [agent]deploy_logs_collect with deploy_logs_storage_backend=local: one
// gzip'd tar archive a collection, named as Ironic names them
// (<node uuid>_<node name>_<instance uuid>_<label>_<time>.tar.gz, the
// empty fields left out), in one directory bounded in total size and age;
// and a ferric extension of the API that lists and downloads them
// (GET /v1/nodes/{node}/ramdisk_logs[/{name}]).
package ramdisklogs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults of Store's bounds.
const (
	// DefaultMaxBytes bounds the total size of the kept archives.
	DefaultMaxBytes = 256 << 20
	// DefaultMaxAge is how long an archive is kept.
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultMaxArchive bounds one archive (a bigger one is refused).
	DefaultMaxArchive = 32 << 20
)

// timeLayout is Ironic's timestamp in the file names.
const timeLayout = "2006-01-02-15-04-05"

// maxField bounds a name field (node names may have 255 characters;
// file names 255 bytes).
const maxField = 80

// suffix ends every archive's name.
const suffix = ".tar.gz"

// ErrNotFound: no such archive for the node.
var ErrNotFound = errors.New("ramdisklogs: not found")

// Store keeps the archives in Dir. Its zero bounds are the defaults.
type Store struct {
	Dir string
	// MaxBytes bounds the archives' total size: the oldest go first.
	MaxBytes int64
	// MaxAge: older archives are removed.
	MaxAge time.Duration
	// MaxArchive bounds one archive.
	MaxArchive int64
	Log        *slog.Logger
	// now is time.Now (tests set it).
	now func() time.Time
	mu  sync.Mutex
}

// Meta says whose logs an archive holds.
type Meta struct {
	NodeUUID, NodeName, InstanceUUID string
	// Label is the phase: deploy, cleaning, inspection, rescue, ...
	Label string
}

// Entry is one kept archive.
type Entry struct {
	Name      string
	NodeUUID  string
	Size      int64
	CreatedAt time.Time
}

func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Save writes data (a gzip'd tar) as a new archive of m and prunes the
// store. It returns the archive's entry.
func (s *Store) Save(m Meta, data []byte) (Entry, error) {
	if err := checkUUID(m.NodeUUID); err != nil {
		return Entry{}, err
	}
	if max := or(s.MaxArchive, DefaultMaxArchive); int64(len(data)) > max {
		return Entry{}, fmt.Errorf("ramdisklogs: archive of %d bytes is over the %d bytes limit", len(data), max)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return Entry{}, errors.New("ramdisklogs: the agent's logs are not a gzip archive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return Entry{}, fmt.Errorf("ramdisklogs: %w", err)
	}
	now := s.clock().UTC()
	fields := []string{m.NodeUUID}
	for _, f := range []string{m.NodeName, m.InstanceUUID, m.Label} {
		if f = clean(f); f != "" {
			fields = append(fields, f)
		}
	}
	fields = append(fields, now.Format(timeLayout))
	name := strings.Join(fields, "_") + suffix
	// Two collections in one second: the later one gets a counter.
	for i := 1; ; i++ {
		if _, err := os.Lstat(filepath.Join(s.Dir, name)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = strings.Join(fields, "_") + fmt.Sprintf("-%d", i) + suffix
	}
	path := filepath.Join(s.Dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return Entry{}, fmt.Errorf("ramdisklogs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("ramdisklogs: %w", err)
	}
	os.Chtimes(path, now, now)
	s.pruneLocked(name)
	return Entry{Name: name, NodeUUID: m.NodeUUID, Size: int64(len(data)), CreatedAt: now}, nil
}

// clean makes a name field safe in a file name: no separators, no
// underscores (the field separator), nothing but printable ASCII.
func clean(f string) string {
	var b strings.Builder
	for _, r := range f {
		switch {
		case r == '_' || r == '/' || r == '\\' || r <= ' ' || r > '~':
			b.WriteByte('-')
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if len(out) > maxField { // a file name has at most 255 bytes
		out = out[:maxField]
	}
	if out == "." || out == ".." {
		return ""
	}
	return out
}

func checkUUID(u string) error {
	if len(u) != 36 || strings.Trim(strings.ToLower(u), "0123456789abcdef-") != "" {
		return fmt.Errorf("ramdisklogs: %q is not a node UUID", u)
	}
	return nil
}

// List returns the node's archives, oldest first. Archives past the age
// limit are removed first.
func (s *Store) List(nodeUUID string) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked("")
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range all {
		if e.NodeUUID == nodeUUID {
			out = append(out, e)
		}
	}
	return out, nil
}

// Open opens the node's archive name (a name List gave).
func (s *Store) Open(nodeUUID, name string) (*os.File, Entry, error) {
	list, err := s.List(nodeUUID)
	if err != nil {
		return nil, Entry{}, err
	}
	for _, e := range list {
		if e.Name == name {
			f, err := os.Open(filepath.Join(s.Dir, e.Name))
			if err != nil {
				return nil, Entry{}, fmt.Errorf("ramdisklogs: %w", err)
			}
			return f, e, nil
		}
	}
	return nil, Entry{}, ErrNotFound
}

// all lists every archive, oldest first.
func (s *Store) all() ([]Entry, error) {
	des, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ramdisklogs: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasSuffix(name, suffix) || len(name) < 37 || name[36] != '_' || checkUUID(name[:36]) != nil {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, Entry{Name: name, NodeUUID: name[:36], Size: fi.Size(), CreatedAt: fi.ModTime().UTC()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// pruneLocked removes the archives past MaxAge, then the oldest ones
// until the total fits MaxBytes (keep, the archive just saved, stays).
func (s *Store) pruneLocked(keep string) {
	all, err := s.all()
	if err != nil {
		return
	}
	maxAge, maxBytes := or(s.MaxAge, DefaultMaxAge), or(s.MaxBytes, DefaultMaxBytes)
	cutoff := s.clock().Add(-maxAge)
	var total int64
	var kept []Entry
	for _, e := range all {
		if e.CreatedAt.Before(cutoff) && e.Name != keep {
			s.remove(e, "older than "+maxAge.String())
			continue
		}
		total += e.Size
		kept = append(kept, e)
	}
	for _, e := range kept {
		if total <= maxBytes {
			break
		}
		if e.Name == keep {
			continue
		}
		s.remove(e, fmt.Sprintf("the archives exceed %d bytes", maxBytes))
		total -= e.Size
	}
}

func (s *Store) remove(e Entry, why string) {
	if err := os.Remove(filepath.Join(s.Dir, e.Name)); err != nil && s.Log != nil {
		s.Log.Warn("ramdisk logs: cannot remove", "file", e.Name, "err", err)
		return
	}
	if s.Log != nil {
		s.Log.Info("ramdisk logs: removed", "file", e.Name, "node", e.NodeUUID, "reason", why)
	}
}

func or[T int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
