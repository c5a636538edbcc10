// Package configdrive builds OpenStack config drives: ISO9660 images
// labelled "config-2" holding openstack/<version>/meta_data.json,
// network_data.json, user_data and vendor data, which cloud-init's
// ConfigDrive datasource reads on first boot.
//
// Input is the dictionary form Ironic accepts in instance_info.configdrive
// (API 1.56+): {meta_data, network_data, user_data, vendor_data}, merged with
// data from the node (Node). Build returns the file tree; WriteISO writes it
// as ISO9660 with Rock Ridge and Joliet long names; Encode turns an ISO
// into base64(gzip(ISO)), the form the conductor sends to the agent.
//
//	in, err := configdrive.ParseInput(rawJSON)
//	drive, err := configdrive.Build(in, configdrive.Node{UUID: n.UUID, Name: n.Name})
//	var iso bytes.Buffer
//	err = drive.WriteISO(ctx, &iso)
//	s, err := configdrive.Encode(iso.Bytes())
//
// The ISO is written with github.com/diskfs/go-diskfs v1.9.4; it stages
// files in a temporary directory. In that version the Joliet records of
// subdirectories point at the primary (ISO9660) directory extents; fixJoliet
// (joliet.go) repoints them, so that Joliet readers (Windows and
// cloudbase-init, isoinfo -J) see the same tree as Rock Ridge readers
// (Linux, cloud-init).
package configdrive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Label is the volume label cloud-init looks for.
const Label = "config-2"

// MaxSize is the largest config drive Ironic and the agent accept (64 MiB).
const MaxSize = 64 << 20

// maxMetaLen is Nova's limit on metadata keys and values.
const maxMetaLen = 255

// Versions are the dated metadata versions written besides "latest"; they
// are the ones cloud-init knows.
var Versions = []string{"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27"}

var (
	// ErrInvalid is returned (wrapped) for configdrive input that cannot be used.
	ErrInvalid = errors.New("invalid configdrive")
	// ErrTooLarge is returned when the ISO exceeds MaxSize.
	ErrTooLarge = errors.New("configdrive too large")
)

// Input is the dictionary form of instance_info.configdrive.
type Input struct {
	MetaData    map[string]any `json:"meta_data,omitempty"`
	NetworkData map[string]any `json:"network_data,omitempty"`
	// UserData is a JSON string (written as is) or any other JSON value
	// (written as JSON).
	UserData   json.RawMessage `json:"user_data,omitempty"`
	VendorData map[string]any  `json:"vendor_data,omitempty"`
}

// ParseInput decodes and checks the dictionary form of a configdrive.
func ParseInput(b []byte) (*Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("configdrive: %w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("configdrive: %w: trailing data after the JSON object", ErrInvalid)
	}
	if _, err := in.userData(); err != nil {
		return nil, err
	}
	return &in, nil
}

func (in *Input) userData() ([]byte, error) {
	raw := bytes.TrimSpace(in.UserData)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("configdrive: user_data: %w: %v", ErrInvalid, err)
		}
		return []byte(s), nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("configdrive: user_data: %w: %v", ErrInvalid, err)
	}
	return json.Marshal(v)
}

// File is a file injected into the instance (Nova "personality" files).
type File struct {
	Path    string // absolute path in the instance
	Content []byte
}

// Node is what the conductor knows about the node; it fills meta_data keys
// the input does not set.
type Node struct {
	UUID       string
	Name       string
	Hostname   string            // defaults to Name
	PublicKeys map[string]string // key name → OpenSSH public key
	AdminPass  string
	Meta       map[string]string // meta_data.meta; keys and values ≤ 255 bytes
	Files      []File
	EC2        bool // also write ec2/latest/meta-data.json
}

// Drive is the file tree of a config drive: slash-separated paths relative
// to the root → contents.
type Drive struct {
	Files map[string][]byte
}

// Build merges the input with node data and lays out the config drive.
// in may be nil (a drive from node data only).
func Build(in *Input, node Node) (*Drive, error) {
	if in == nil {
		in = &Input{}
	}
	md := make(map[string]any, len(in.MetaData)+8)
	for k, v := range in.MetaData {
		md[k] = v
	}
	setDefault := func(k string, v any) {
		if _, ok := md[k]; !ok {
			md[k] = v
		}
	}
	if node.UUID != "" {
		setDefault("uuid", node.UUID)
	}
	if node.Name != "" {
		setDefault("name", node.Name)
	}
	host := node.Hostname
	if host == "" {
		host = node.Name
	}
	if host != "" {
		setDefault("hostname", host)
	}
	if len(node.PublicKeys) > 0 {
		keys := make(map[string]any, len(node.PublicKeys))
		var list []any
		names := sortedKeys(node.PublicKeys)
		for _, n := range names {
			keys[n] = node.PublicKeys[n]
			list = append(list, map[string]any{"name": n, "type": "ssh", "data": node.PublicKeys[n]})
		}
		setDefault("public_keys", keys)
		setDefault("keys", list)
	}
	if node.AdminPass != "" {
		setDefault("admin_pass", node.AdminPass)
	}
	if len(node.Meta) > 0 {
		meta := make(map[string]any, len(node.Meta))
		for k, v := range node.Meta {
			if len(k) == 0 || len(k) > maxMetaLen || len(v) > maxMetaLen {
				return nil, fmt.Errorf("configdrive: meta %q: %w: keys must be 1..%d bytes and values at most %d bytes", truncate(k), ErrInvalid, maxMetaLen, maxMetaLen)
			}
			meta[k] = v
		}
		setDefault("meta", meta)
	}
	if v, ok := md["uuid"]; !ok || v == "" {
		return nil, fmt.Errorf("configdrive: meta_data has no uuid and the node has none: %w", ErrInvalid)
	}

	d := &Drive{Files: map[string][]byte{}}
	if len(node.Files) > 0 {
		var list []any
		for i, f := range node.Files {
			if !path.IsAbs(f.Path) {
				return nil, fmt.Errorf("configdrive: injected file %q: %w: path must be absolute", f.Path, ErrInvalid)
			}
			content := fmt.Sprintf("/content/%04d", i)
			d.Files["openstack"+content] = f.Content
			list = append(list, map[string]any{"path": f.Path, "content_path": content})
		}
		setDefault("files", list)
	}

	metaJSON, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("configdrive: meta_data: %w: %v", ErrInvalid, err)
	}
	var netJSON []byte
	if in.NetworkData != nil {
		if netJSON, err = json.Marshal(in.NetworkData); err != nil {
			return nil, fmt.Errorf("configdrive: network_data: %w: %v", ErrInvalid, err)
		}
	}
	vendor := in.VendorData
	if vendor == nil {
		vendor = map[string]any{}
	}
	vendorJSON, err := json.Marshal(vendor)
	if err != nil {
		return nil, fmt.Errorf("configdrive: vendor_data: %w: %v", ErrInvalid, err)
	}
	userData, err := in.userData()
	if err != nil {
		return nil, err
	}

	for _, v := range append(slicesClone(Versions), "latest") {
		dir := "openstack/" + v + "/"
		d.Files[dir+"meta_data.json"] = metaJSON
		if netJSON != nil && v >= "2015-10-15" || netJSON != nil && v == "latest" {
			d.Files[dir+"network_data.json"] = netJSON
		}
		if userData != nil {
			d.Files[dir+"user_data"] = userData
		}
		if v >= "2013-04-04" || v == "latest" {
			// Ironic (via openstacksdk) writes vendor data as vendor_data2.json;
			// vendor_data.json is kept empty so cloud-init does not apply it twice.
			d.Files[dir+"vendor_data.json"] = []byte("{}")
		}
		if v >= "2016-10-06" || v == "latest" {
			d.Files[dir+"vendor_data2.json"] = vendorJSON
		}
	}
	if node.EC2 {
		ec2 := map[string]any{"instance-id": md["uuid"], "hostname": md["hostname"], "local-hostname": md["hostname"]}
		if len(node.PublicKeys) > 0 {
			pk := map[string]any{}
			for i, n := range sortedKeys(node.PublicKeys) {
				pk[fmt.Sprintf("%d=%s", i, n)] = map[string]any{"openssh-key": node.PublicKeys[n]}
			}
			ec2["public-keys"] = pk
		}
		b, err := json.Marshal(ec2)
		if err != nil {
			return nil, fmt.Errorf("configdrive: ec2 meta-data: %w", err)
		}
		d.Files["ec2/latest/meta-data.json"] = b
		if userData != nil {
			d.Files["ec2/latest/user-data"] = userData
		}
	}
	return d, nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// WriteISO writes the drive as an ISO9660 image with Rock Ridge names and the volume label "config-2". It stages files under os.TempDir.
func (d *Drive) WriteISO(ctx context.Context, w io.Writer) error {
	var total int64
	for _, c := range d.Files {
		total += int64(len(c))
	}
	if total > MaxSize {
		return fmt.Errorf("configdrive: %d bytes of files: %w (limit %d bytes)", total, ErrTooLarge, MaxSize)
	}
	tmp, err := os.MkdirTemp("", "ferric-configdrive-")
	if err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	isoPath := filepath.Join(tmp, "drive.iso")
	// Room for the files plus directories, descriptors and path tables.
	capacity := total + int64(len(d.Files))*8192 + 4<<20
	st, err := file.CreateFromPath(isoPath, capacity)
	if err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	defer st.Close()
	fsys, err := iso9660.Create(st, capacity, 0, 2048, work)
	if err != nil {
		return fmt.Errorf("configdrive: create iso: %w", err)
	}
	for _, p := range sortedKeys(d.Files) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("configdrive: %w", err)
		}
		if dir := path.Dir(p); dir != "." {
			if err := fsys.Mkdir("/" + dir); err != nil {
				return fmt.Errorf("configdrive: mkdir %s: %w", dir, err)
			}
		}
		f, err := fsys.OpenFile("/"+p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("configdrive: create %s: %w", p, err)
		}
		_, err = f.Write(d.Files[p])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("configdrive: write %s: %w", p, err)
		}
	}
	if err := fsys.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: Label, DeepDirectories: true}); err != nil {
		return fmt.Errorf("configdrive: finalize iso: %w", err)
	}
	f, err := os.OpenFile(isoPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("configdrive: %w", err)
	}
	defer f.Close()
	if err := fixJoliet(f); err != nil {
		return err
	}
	// The volume space size in the primary volume descriptor tells how much
	// of the pre-sized file the image uses.
	var pvd [2048]byte
	if _, err := f.ReadAt(pvd[:], 16*2048); err != nil {
		return fmt.Errorf("configdrive: read back iso: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return errors.New("configdrive: finalized image has no primary volume descriptor")
	}
	size := int64(binary.LittleEndian.Uint32(pvd[80:])) * int64(binary.LittleEndian.Uint16(pvd[128:]))
	if size <= 0 || size > capacity {
		return fmt.Errorf("configdrive: finalized image reports %d bytes", size)
	}
	if size > MaxSize {
		return fmt.Errorf("configdrive: ISO of %d bytes: %w (limit %d bytes)", size, ErrTooLarge, MaxSize)
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("configdrive: write iso: %w", err)
	}
	return nil
}

// Encode returns base64(gzip(iso)), the configdrive form sent to the agent.
// It refuses images larger than MaxSize.
func Encode(iso []byte) (string, error) {
	if len(iso) > MaxSize {
		return "", fmt.Errorf("configdrive: ISO of %d bytes: %w (limit %d bytes)", len(iso), ErrTooLarge, MaxSize)
	}
	var buf bytes.Buffer
	b64 := base64.NewEncoder(base64.StdEncoding, &buf)
	zw := gzip.NewWriter(b64)
	if _, err := zw.Write(iso); err != nil {
		return "", fmt.Errorf("configdrive: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("configdrive: gzip: %w", err)
	}
	if err := b64.Close(); err != nil {
		return "", fmt.Errorf("configdrive: base64: %w", err)
	}
	return buf.String(), nil
}

// Decode reverses Encode: it accepts base64(gzip(ISO)), base64(ISO) or, as
// Ironic does when base64 decoding fails, the raw bytes, and refuses results
// larger than MaxSize.
func Decode(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		raw = []byte(s)
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("configdrive: gunzip: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("configdrive: gunzip: %w", err)
		}
		raw = out
	}
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("configdrive: decoded image larger than %d bytes: %w", MaxSize, ErrTooLarge)
	}
	return raw, nil
}
