// Package store is a small image service compatible with the part of the
// OpenStack Image (Glance) v2 API that clients use: create, upload,
// download (with Range), list with filters and paging, show, JSON-patch
// update and delete, plus the version document for discovery.
//
// Metadata lives in <dir>/images/<id>/meta.json and image bytes in
// <dir>/images/<id>/data; both are replaced atomically (write to a temporary
// file, then rename). An upload is hashed while it is written (md5 for
// "checksum", sha512 for os_hash_value); virtual_size is read from qcow2
// headers. A failed or interrupted upload leaves the image "queued" with
// no data.
//
// The API checks its input as Glance does (api/v2/images.RequestDeserializer
// and ImagesController: the image schema, read-only and reserved
// attributes, its PATCH media types and pointers, limit and visibility)
// with the shared argument rules of conductor/ironichttp, and answers in
// webob's JSON error body; test/ironicinput replays Glance 25.1's recorded
// answers to bad and borderline input (TestImageInputRules). Handler returns it as a plain net/http handler; the conductor
// uses Get and Open.
package store

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/images/checksum"
	"github.com/ferric-metal/ferric/images/internal/writeback"
	"github.com/ferric-metal/ferric/images/qcow2"
)

// Image statuses.
const (
	StatusQueued  = "queued"
	StatusSaving  = "saving"
	StatusActive  = "active"
	StatusKilled  = "killed"
	StatusDeleted = "deleted"
)

var (
	// ErrNotFound is returned for unknown image ids.
	ErrNotFound = errors.New("image not found")
	// ErrConflict is returned for operations the image status forbids.
	ErrConflict = errors.New("image status conflict")
	// ErrInvalid is returned for invalid requests.
	ErrInvalid = errors.New("invalid image request")
	// ErrForbidden is returned for changes Glance forbids (read-only or protected).
	ErrForbidden = errors.New("forbidden")
)

// Image is the metadata of one image.
type Image struct {
	ID              string         `json:"id"`
	Name            *string        `json:"name"`
	Status          string         `json:"status"`
	Visibility      string         `json:"visibility"`
	DiskFormat      *string        `json:"disk_format"`
	ContainerFormat *string        `json:"container_format"`
	MinDisk         int            `json:"min_disk"`
	MinRAM          int            `json:"min_ram"`
	Protected       bool           `json:"protected"`
	Tags            []string       `json:"tags"`
	Checksum        *string        `json:"checksum"`
	OSHashAlgo      *string        `json:"os_hash_algo"`
	OSHashValue     *string        `json:"os_hash_value"`
	Size            *int64         `json:"size"`
	VirtualSize     *int64         `json:"virtual_size"`
	Owner           *string        `json:"owner"`
	CreatedAt       time.Time      `json:"created_at"`
	UpdatedAt       time.Time      `json:"updated_at"`
	Properties      map[string]any `json:"properties,omitempty"` // extra properties, flattened in the API
}

func (img *Image) clone() *Image {
	c := *img
	c.Tags = append([]string(nil), img.Tags...)
	if img.Properties != nil {
		c.Properties = make(map[string]any, len(img.Properties))
		for k, v := range img.Properties {
			c.Properties[k] = v
		}
	}
	return &c
}

// Store keeps images under a state directory.
type Store struct {
	// MaxSize bounds an image upload in bytes (≤ 0: no bound); a larger
	// upload is refused with 413 and nothing of it is kept.
	MaxSize int64

	dir    string
	log    *slog.Logger
	mu     sync.Mutex
	images map[string]*Image
	now    func() time.Time
}

// New opens (creating if needed) a store under dir and loads its metadata.
// Images left "saving" by a crash go back to "queued".
func New(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{dir: filepath.Join(dir, "images"), log: log, images: map[string]*Image{}, now: func() time.Time { return time.Now().UTC().Truncate(time.Second) }}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !idPattern.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "meta.json"))
		if err != nil {
			log.Warn("store: skipping image without metadata", "image", e.Name(), "err", err)
			continue
		}
		var img Image
		if err := json.Unmarshal(b, &img); err != nil {
			return nil, fmt.Errorf("store: image %s: %w", e.Name(), err)
		}
		if img.Status == StatusSaving {
			img.Status = StatusQueued
			_ = os.Remove(filepath.Join(s.dir, img.ID, "data"))
			if err := s.persist(&img); err != nil {
				return nil, err
			}
		}
		s.images[img.ID] = &img
	}
	return s, nil
}

func (s *Store) imageDir(id string) string { return filepath.Join(s.dir, id) }

// DataPath returns where the bytes of an image are kept.
func (s *Store) DataPath(id string) string { return filepath.Join(s.dir, id, "data") }

func (s *Store) persist(img *Image) error {
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	dir := s.imageDir(img.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	tmp, err := os.CreateTemp(dir, "meta-*.tmp")
	if err != nil {
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "meta.json")); err != nil {
		return fmt.Errorf("store: image %s: %w", img.ID, err)
	}
	return nil
}

// Get returns a copy of an image's metadata.
func (s *Store) Get(id string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[id]
	if !ok {
		return nil, fmt.Errorf("store: image %s: %w", id, ErrNotFound)
	}
	return img.clone(), nil
}

// Open returns the data file of an active image (its path is f.Name()).
func (s *Store) Open(ctx context.Context, id string) (*os.File, *Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	img, err := s.Get(id)
	if err != nil {
		return nil, nil, err
	}
	if img.Status != StatusActive {
		return nil, nil, fmt.Errorf("store: image %s is %s, not active: %w", id, img.Status, ErrConflict)
	}
	f, err := os.Open(s.DataPath(id))
	if err != nil {
		return nil, nil, fmt.Errorf("store: image %s: %w", id, err)
	}
	return f, img, nil
}

// Create adds a queued image. An empty ID gets a random UUID.
func (s *Store) Create(img *Image) (*Image, error) {
	if img.ID == "" {
		img.ID = uuid.NewString()
	}
	if !idPattern.MatchString(img.ID) {
		return nil, fmt.Errorf("store: id %q is not a UUID: %w", img.ID, ErrInvalid)
	}
	if img.Visibility == "" {
		img.Visibility = "shared"
	}
	if err := validate(img); err != nil {
		return nil, err
	}
	if img.Tags == nil {
		img.Tags = []string{}
	}
	img.Status = StatusQueued
	img.CreatedAt = s.now()
	img.UpdatedAt = img.CreatedAt
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[img.ID]; ok {
		return nil, fmt.Errorf("store: image %s already exists: %w", img.ID, ErrConflict)
	}
	if err := s.persist(img); err != nil {
		return nil, err
	}
	s.images[img.ID] = img
	s.log.Info("store: image created", "image", img.ID)
	return img.clone(), nil
}

var (
	diskFormats      = set("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
	containerFormats = set("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
	visibilities     = set("public", "private", "shared", "community")
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

func validate(img *Image) error {
	if img.DiskFormat != nil && !diskFormats[*img.DiskFormat] {
		return fmt.Errorf("store: disk_format %q: %w", *img.DiskFormat, ErrInvalid)
	}
	if img.ContainerFormat != nil && !containerFormats[*img.ContainerFormat] {
		return fmt.Errorf("store: container_format %q: %w", *img.ContainerFormat, ErrInvalid)
	}
	if !visibilities[img.Visibility] {
		return fmt.Errorf("store: visibility %q: %w", img.Visibility, ErrInvalid)
	}
	if img.MinDisk < 0 || img.MinRAM < 0 {
		return fmt.Errorf("store: min_disk and min_ram must not be negative: %w", ErrInvalid)
	}
	if img.Name != nil && len(*img.Name) > 255 {
		return fmt.Errorf("store: name longer than 255 characters: %w", ErrInvalid)
	}
	return nil
}

// Update applies fn to a copy of the image and stores the result.
func (s *Store) Update(id string, fn func(*Image) error) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.images[id]
	if !ok {
		return nil, fmt.Errorf("store: image %s: %w", id, ErrNotFound)
	}
	img := cur.clone()
	if err := fn(img); err != nil {
		return nil, err
	}
	if err := validate(img); err != nil {
		return nil, err
	}
	img.UpdatedAt = s.now()
	if err := s.persist(img); err != nil {
		return nil, err
	}
	s.images[id] = img
	return img.clone(), nil
}

// Delete removes an image and its data.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[id]
	if !ok {
		return fmt.Errorf("store: image %s: %w", id, ErrNotFound)
	}
	if img.Protected {
		return fmt.Errorf("store: image %s is protected: %w", id, ErrForbidden)
	}
	if err := os.RemoveAll(s.imageDir(id)); err != nil {
		return fmt.Errorf("store: image %s: %w", id, err)
	}
	delete(s.images, id)
	s.log.Info("store: image deleted", "image", id)
	return nil
}

// Filter selects images for List; empty fields match everything.
type Filter struct {
	Name, Status, Visibility, DiskFormat string
	Marker                               string // id of the last image of the previous page
	Limit                                int
}

// List returns images newest first, and whether more follow.
func (s *Store) List(f Filter) ([]*Image, bool, error) {
	s.mu.Lock()
	all := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		all = append(all, img.clone())
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	start := 0
	if f.Marker != "" {
		start = -1
		for i, img := range all {
			if img.ID == f.Marker {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, false, fmt.Errorf("store: marker %s: %w", f.Marker, ErrNotFound)
		}
	}
	var out []*Image
	for _, img := range all[start:] {
		if f.Name != "" && (img.Name == nil || *img.Name != f.Name) ||
			f.Status != "" && img.Status != f.Status ||
			f.Visibility != "" && f.Visibility != "all" && img.Visibility != f.Visibility ||
			f.DiskFormat != "" && (img.DiskFormat == nil || *img.DiskFormat != f.DiskFormat) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			return out, true, nil
		}
		out = append(out, img)
	}
	return out, false, nil
}

// Upload stores the image bytes read from r. The image must be queued; it is
// "saving" meanwhile, and "active" on success. If r fails, or yields a
// different number of bytes than expectSize (when ≥ 0), the image goes back
// to "queued" and no data is kept.
func (s *Store) Upload(ctx context.Context, id string, r io.Reader, expectSize int64) (*Image, error) {
	if _, err := s.Update(id, func(img *Image) error {
		if img.Status != StatusQueued {
			return fmt.Errorf("store: image %s is %s; data can only be uploaded to a queued image: %w", id, img.Status, ErrConflict)
		}
		img.Status = StatusSaving
		return nil
	}); err != nil {
		return nil, err
	}
	img, err := s.receive(ctx, id, r, expectSize)
	if err != nil {
		s.log.Warn("store: upload failed", "image", id, "err", err)
		if _, uerr := s.Update(id, func(img *Image) error { img.Status = StatusQueued; return nil }); uerr != nil && !errors.Is(uerr, ErrNotFound) {
			s.log.Error("store: cannot reset image status", "image", id, "err", uerr)
		}
		return nil, err
	}
	s.log.Info("store: image uploaded", "image", id, "size", *img.Size)
	return img, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (s *Store) receive(ctx context.Context, id string, r io.Reader, expectSize int64) (*Image, error) {
	tmp, err := os.CreateTemp(s.imageDir(id), "data-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("store: image %s: %w", id, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	md5h, sha := md5.New(), sha512.New()
	out := &writeback.Writer{F: tmp, Direct: true}
	defer out.Close()
	n, err := checksum.CopyParallel(ctxReader{ctx, r}, 1<<20, out, md5h, sha)
	if err != nil {
		return nil, fmt.Errorf("store: image %s: upload interrupted after %d bytes: %w", id, n, err)
	}
	if expectSize >= 0 && n != expectSize {
		return nil, fmt.Errorf("store: image %s: received %d bytes, expected %d: %w", id, n, expectSize, ErrInvalid)
	}
	vsize := n
	if img, err := qcow2Info(ctx, tmp, n); err == nil {
		vsize = img
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("store: image %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("store: image %s: %w", id, err)
	}
	if err := os.Rename(tmp.Name(), s.DataPath(id)); err != nil {
		return nil, fmt.Errorf("store: image %s: %w", id, err)
	}
	sum, hv, algo := hexSum(md5h), hexSum(sha), "sha512"
	return s.Update(id, func(img *Image) error {
		img.Status = StatusActive
		img.Checksum, img.OSHashAlgo, img.OSHashValue = &sum, &algo, &hv
		img.Size, img.VirtualSize = &n, &vsize
		return nil
	})
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// qcow2Info returns the virtual size of a qcow2 file.
func qcow2Info(ctx context.Context, f *os.File, size int64) (int64, error) {
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	if qcow2.Detect(head[:n]) != qcow2.FormatQcow2 {
		return 0, errors.New("not qcow2")
	}
	cl := make([]byte, min(size, 64<<10))
	if _, err := f.ReadAt(cl, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	h, err := qcow2.ParseHeader(cl)
	if err != nil {
		return 0, err
	}
	return h.VirtualSize(), nil
}
