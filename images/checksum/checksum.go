// Package checksum verifies image bytes against the checksum inputs Ironic
// passes around: the preferred os_hash_algo/os_hash_value pair, or the legacy
// image checksum, which is a hex digest (its length tells the algorithm) or
// an http(s) URL of a sha256sum/md5sum-style checksum file.
//
// Typical use by a downloader:
//
//	want, err := checksum.Resolve(ctx, http.DefaultClient, checksum.Spec{
//		OSHashAlgo: info.OSHashAlgo, OSHashValue: info.OSHashValue,
//		Checksum: info.Checksum, ImageURL: info.URLs[0],
//	})
//	v, err := checksum.NewVerifier(want)
//	io.Copy(io.MultiWriter(disk, v), body)
//	if err := v.Verify(); err != nil { ... } // errors.Is(err, checksum.ErrMismatch)
//
// Hashing uses the standard library (crypto/md5, crypto/sha1, crypto/sha256,
// crypto/sha512); the checksum-file parser is written here because no library
// implements Ironic's tolerant name matching.
package checksum

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Algorithm names as Glance and Ironic spell them (hashlib names).
const (
	MD5    = "md5"
	SHA1   = "sha1"
	SHA256 = "sha256"
	SHA512 = "sha512"
)

// MaxFileSize bounds the size of a checksum file fetched over HTTP.
const MaxFileSize = 4 << 20

var (
	// ErrMismatch is returned (wrapped) when computed and expected digests differ.
	ErrMismatch = errors.New("checksum mismatch")
	// ErrUnsupported is returned for an unknown algorithm or digest length.
	ErrUnsupported = errors.New("unsupported checksum algorithm")
	// ErrNotFound is returned when a checksum file has no entry for the image.
	ErrNotFound = errors.New("no checksum for image")
	// ErrMD5Disabled is returned when an md5 checksum is given but md5 is not allowed.
	ErrMD5Disabled = errors.New("md5 checksums are disabled")
)

// New returns a fresh hash for the named algorithm (md5, sha1, sha256,
// sha512; case-insensitive, "sha-256" style dashes accepted).
func New(algo string) (hash.Hash, error) {
	switch normalize(algo) {
	case MD5:
		return md5.New(), nil
	case SHA1:
		return sha1.New(), nil
	case SHA256:
		return sha256.New(), nil
	case SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("checksum: %q: %w", algo, ErrUnsupported)
}

func normalize(algo string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(algo)), "-", "")
}

// AlgorithmForHex infers the algorithm from the length of a hex digest:
// 32 md5, 40 sha1, 64 sha256, 128 sha512.
func AlgorithmForHex(digest string) (string, error) {
	if !isHex(digest) {
		return "", fmt.Errorf("checksum: %q is not a hex digest: %w", digest, ErrUnsupported)
	}
	switch len(digest) {
	case 32:
		return MD5, nil
	case 40:
		return SHA1, nil
	case 64:
		return SHA256, nil
	case 128:
		return SHA512, nil
	}
	return "", fmt.Errorf("checksum: cannot infer algorithm from a %d-character digest: %w", len(digest), ErrUnsupported)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Expected is a digest to verify against.
type Expected struct {
	Algorithm string // md5, sha1, sha256 or sha512
	Value     string // lower-case hex
	Source    string // where the value came from, for error messages (e.g. "os_hash_value")
}

func (e Expected) String() string { return e.Algorithm + ":" + e.Value }

func newExpected(algo, value, source string) (Expected, error) {
	algo = normalize(algo)
	value = strings.ToLower(strings.TrimSpace(value))
	h, err := New(algo)
	if err != nil {
		return Expected{}, err
	}
	if !isHex(value) || len(value) != 2*h.Size() {
		return Expected{}, fmt.Errorf("checksum: %s value %q is not a %d-character hex digest", algo, value, 2*h.Size())
	}
	return Expected{Algorithm: algo, Value: value, Source: source}, nil
}

// Check compares a computed digest with the expected one. what names the
// hashed bytes in the error ("image", "bytes written").
func (e Expected) Check(sum []byte, what string) error {
	got := hex.EncodeToString(sum)
	if got != e.Value {
		src := ""
		if e.Source != "" {
			src = " (from " + e.Source + ")"
		}
		return fmt.Errorf("checksum: %s of %s is %s, expected %s%s: %w", e.Algorithm, what, got, e.Value, src, ErrMismatch)
	}
	return nil
}

// Verifier is an io.Writer that hashes what is written to it.
type Verifier struct {
	hash.Hash
	Expected Expected
	n        int64
}

// NewVerifier returns a Verifier for e.
func NewVerifier(e Expected) (*Verifier, error) {
	h, err := New(e.Algorithm)
	if err != nil {
		return nil, err
	}
	return &Verifier{Hash: h, Expected: e}, nil
}

// Write hashes p.
func (v *Verifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	return v.Hash.Write(p)
}

// Written returns the number of bytes hashed so far.
func (v *Verifier) Written() int64 { return v.n }

// Verify checks the bytes written so far against the expected digest.
func (v *Verifier) Verify() error { return v.Expected.Check(v.Sum(nil), "image") }

// Spec holds Ironic's checksum inputs for one image.
type Spec struct {
	OSHashAlgo  string // image os_hash_algo (preferred when set with OSHashValue)
	OSHashValue string
	Checksum    string // legacy: hex digest, "algo:hex", or http(s) URL of a checksum file
	ImageURL    string // image URL, used to find the entry in a checksum file
	DisableMD5  bool   // refuse md5 (Ironic's allow_md5_checksum=False)
}

// Resolve turns a Spec into the digest to verify, fetching the checksum file
// with client when Checksum is a URL. A nil client means http.DefaultClient.
func Resolve(ctx context.Context, client *http.Client, s Spec) (Expected, error) {
	var (
		e   Expected
		err error
	)
	switch {
	case s.OSHashAlgo != "" && isURL(s.OSHashValue):
		// As IPA does: a checksum file named by os_hash_value (metal3 with
		// checksumType set and a checksum URL) holds a digest of os_hash_algo.
		if e, err = Fetch(ctx, client, s.OSHashValue, s.ImageURL); err == nil && e.Algorithm != normalize(s.OSHashAlgo) {
			err = fmt.Errorf("checksum: %s holds a %s digest for the image, but os_hash_algo is %s", e.Source, e.Algorithm, s.OSHashAlgo)
		}
	case s.OSHashAlgo != "" && s.OSHashValue != "":
		e, err = newExpected(s.OSHashAlgo, s.OSHashValue, "os_hash_value")
	case isURL(s.Checksum):
		e, err = Fetch(ctx, client, s.Checksum, s.ImageURL)
	case strings.TrimSpace(s.Checksum) != "":
		e, err = ParseValue(s.Checksum)
	default:
		return Expected{}, errors.New("checksum: no os_hash_value or checksum given for the image")
	}
	if err != nil {
		return Expected{}, err
	}
	if s.DisableMD5 && e.Algorithm == MD5 {
		return Expected{}, fmt.Errorf("checksum: %s: %w; set os_hash_algo/os_hash_value to sha256 or sha512", e.Source, ErrMD5Disabled)
	}
	return e, nil
}

func isURL(s string) bool {
	l := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// ParseValue parses a legacy checksum value: a bare hex digest whose length
// tells the algorithm, or "algo:hex".
func ParseValue(v string) (Expected, error) {
	v = strings.TrimSpace(v)
	if algo, hexv, ok := strings.Cut(v, ":"); ok {
		return newExpected(algo, hexv, "checksum")
	}
	algo, err := AlgorithmForHex(v)
	if err != nil {
		return Expected{}, err
	}
	return newExpected(algo, v, "checksum")
}

// Fetch downloads the checksum file at fileURL and returns the entry for imageURL.
func Fetch(ctx context.Context, client *http.Client, fileURL, imageURL string) (Expected, error) {
	if client == nil {
		client = http.DefaultClient
	}
	fileURL = strings.TrimSpace(fileURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fileURL, nil)
	if err != nil {
		return Expected{}, fmt.Errorf("checksum: fetch %s: %w", redact(fileURL), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Expected{}, fmt.Errorf("checksum: fetch %s: %w", redact(fileURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Expected{}, fmt.Errorf("checksum: fetch %s: HTTP %s", redact(fileURL), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFileSize+1))
	if err != nil {
		return Expected{}, fmt.Errorf("checksum: fetch %s: %w", redact(fileURL), err)
	}
	if len(data) > MaxFileSize {
		return Expected{}, fmt.Errorf("checksum: fetch %s: checksum file larger than %d bytes", redact(fileURL), MaxFileSize)
	}
	e, err := ParseFile(data, imageURL)
	if err != nil {
		return Expected{}, fmt.Errorf("%w (checksum file %s)", err, redact(fileURL))
	}
	e.Source = "checksum file " + redact(fileURL)
	return e, nil
}

// redact drops credentials and the query string from a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

type entry struct {
	algo, value, name string
}

// ParseFile finds the digest for imageURL in a checksum file. Accepted lines:
//
//	<hex>                       (a file holding one bare digest)
//	<hex>  <name> / <hex> *<name>   (GNU coreutils, text or binary mode)
//	ALGO (<name>) = <hex>       (BSD / `sha256sum --tag`)
//
// Blank lines and '#' comments are ignored. Names match the image URL in
// this order: the whole URL, its path, its basename (names in the file may
// carry a leading "./", "*" or directories); a file with a single entry
// matches any image.
func ParseFile(data []byte, imageURL string) (Expected, error) {
	var entries []entry
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, ok := parseLine(line)
		if !ok {
			continue
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return Expected{}, fmt.Errorf("checksum: checksum file has no digest lines: %w", ErrNotFound)
	}
	pick := func(e entry) (Expected, error) {
		algo := e.algo
		if algo == "" {
			var err error
			if algo, err = AlgorithmForHex(e.value); err != nil {
				return Expected{}, err
			}
		}
		return newExpected(algo, e.value, "checksum file")
	}
	full, urlPath, base := imageNames(imageURL)
	for _, want := range []string{full, urlPath, base} {
		if want == "" {
			continue
		}
		for _, e := range entries {
			if e.name == want {
				return pick(e)
			}
		}
	}
	if base != "" {
		for _, e := range entries {
			if e.name != "" && path.Base(e.name) == base {
				return pick(e)
			}
		}
	}
	if len(entries) == 1 {
		return pick(entries[0])
	}
	return Expected{}, fmt.Errorf("checksum: no entry for %q among %d entries: %w", base, len(entries), ErrNotFound)
}

func parseLine(line string) (entry, bool) {
	// BSD style: ALGO (name) = hex
	if i := strings.Index(line, " ("); i > 0 {
		if j := strings.LastIndex(line, ") = "); j > i {
			algo := normalize(line[:i])
			if _, err := New(algo); err == nil {
				v := strings.TrimSpace(line[j+4:])
				if isHex(v) {
					return entry{algo: algo, value: strings.ToLower(v), name: cleanName(line[i+2 : j])}, true
				}
			}
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 || !isHex(fields[0]) {
		return entry{}, false
	}
	if len(fields) == 1 {
		return entry{value: strings.ToLower(fields[0])}, true
	}
	// GNU style: the name is everything after the digest and the separator.
	name := strings.TrimSpace(line[len(fields[0]):])
	return entry{value: strings.ToLower(fields[0]), name: cleanName(name)}, true
}

func cleanName(n string) string {
	n = strings.TrimSpace(n)
	n = strings.TrimPrefix(n, "*")
	n = strings.TrimPrefix(n, "./")
	return n
}

// imageNames returns the candidate names for an image URL.
func imageNames(imageURL string) (full, urlPath, base string) {
	imageURL = strings.TrimSpace(imageURL)
	if imageURL == "" {
		return "", "", ""
	}
	u, err := url.Parse(imageURL)
	if err != nil || u.Path == "" {
		return imageURL, "", path.Base(imageURL)
	}
	p := u.Path
	return imageURL, strings.TrimPrefix(p, "/"), path.Base(p)
}
