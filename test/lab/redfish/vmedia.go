package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// MediaDrive is a Machine with a CD drive that virtual media attaches to.
type MediaDrive interface {
	// InsertMedia puts the ISO image file at path in the drive.
	InsertMedia(ctx context.Context, path string) error
	// EjectMedia empties the drive.
	EjectMedia(ctx context.Context) error
}

// cdID is the Id of a system's virtual CD/DVD; usbID of its virtual USB
// stick, which a machine that is a USBDrive has too.
const (
	cdID  = "Cd"
	usbID = "UsbStick"
)

// USBDrive is a Machine with a USB stick slot that virtual media attaches
// to besides the CD (Ironic attaches a ramdisk deploy's config drive
// there).
type USBDrive interface {
	// HasUSB reports whether the machine has the slot.
	HasUSB() bool
	// InsertUSB puts the disk image file at path in the slot.
	InsertUSB(ctx context.Context, path string) error
	// EjectUSB empties the slot.
	EjectUSB(ctx context.Context) error
}

// usbAdapter is a USBDrive seen as a MediaDrive.
type usbAdapter struct{ USBDrive }

func (u usbAdapter) InsertMedia(ctx context.Context, path string) error {
	return u.InsertUSB(ctx, path)
}
func (u usbAdapter) EjectMedia(ctx context.Context) error { return u.EjectUSB(ctx) }

// media is the state of a system's virtual media device.
type media struct {
	image          string // the URL inserted ("" when none)
	inserted       bool
	writeProtected bool
	file           string // the downloaded image
}

// mediaDevice is one virtual media device of a system; st is in the
// system, guarded by its mu.
type mediaDevice struct {
	id, name string
	types    []string
	drive    MediaDrive
	st       *media
}

// virtualMedia returns the virtual media devices of system sys: none when
// the server has no download directory or the machine no CD drive, the CD
// and, when the machine has one, the USB stick.
func (s *Server) virtualMedia(sys *system) []mediaDevice {
	if s.mediaDir == "" {
		return nil
	}
	d, ok := sys.m.(MediaDrive)
	if !ok {
		return nil
	}
	devs := []mediaDevice{{id: cdID, name: "Virtual CD", types: []string{"CD", "DVD"}, drive: d, st: &sys.media}}
	if u, ok := sys.m.(USBDrive); ok && u.HasUSB() {
		devs = append(devs, mediaDevice{id: usbID, name: "Virtual USB stick", types: []string{"USBStick"}, drive: usbAdapter{u}, st: &sys.usb})
	}
	return devs
}

// Media returns the URL of the image in system id's virtual CD and whether
// one is inserted.
func (s *Server) Media(id string) (image string, inserted bool) {
	return s.MediaOf(id, cdID)
}

// MediaOf returns the URL of the image in system id's virtual media device
// dev ("Cd" or "UsbStick") and whether one is inserted.
func (s *Server) MediaOf(id, dev string) (image string, inserted bool) {
	sys, ok := s.byID[id]
	if !ok {
		return "", false
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	m := &sys.media
	if dev == usbID {
		m = &sys.usb
	}
	return m.image, m.inserted
}

// mediaRoute serves base/VirtualMedia[/DEV[/Actions/...]] of system sys,
// where base is the system's or its manager's path (both show the same
// devices, as BMCs that moved them from the manager to the system do).
func (s *Server) mediaRoute(w http.ResponseWriter, r *http.Request, sys *system, base, rest string) {
	devs := s.virtualMedia(sys)
	if len(devs) == 0 {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", r.URL.Path+" not found")
		return
	}
	coll := base + "/VirtualMedia"
	if rest == "" && r.Method == http.MethodGet {
		var members []obj
		for _, d := range devs {
			members = append(members, ref(coll+"/"+d.id))
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": coll, "@odata.type": "#VirtualMediaCollection.VirtualMediaCollection",
			"Name": "Virtual Media Services", "Members": members, "Members@odata.count": len(members)})
		return
	}
	id, action, _ := strings.Cut(rest, "/")
	var dev *mediaDevice
	for i := range devs {
		if devs[i].id == id {
			dev = &devs[i]
		}
	}
	self := coll + "/" + id
	switch {
	case dev == nil && r.Method == http.MethodGet:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", r.URL.Path+" not found")
	case dev == nil:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	case action == "" && r.Method == http.MethodGet:
		s.getMedia(w, sys, dev, self)
	case action == "" && r.Method == http.MethodPatch:
		s.patchMedia(w, r, sys, dev)
	case action == "Actions/VirtualMedia.InsertMedia" && r.Method == http.MethodPost:
		s.insertMedia(w, r, sys, dev)
	case action == "Actions/VirtualMedia.EjectMedia" && r.Method == http.MethodPost:
		s.ejectMedia(w, r, sys, dev)
	case r.Method == http.MethodGet:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", r.URL.Path+" not found")
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	}
}

func (s *Server) getMedia(w http.ResponseWriter, sys *system, dev *mediaDevice, self string) {
	sys.mu.Lock()
	m := *dev.st
	sys.mu.Unlock()
	var image, name any // null when nothing is inserted
	via := "NotConnected"
	if m.image != "" {
		image, name, via = m.image, path.Base(m.image), "URI"
	}
	writeJSON(w, http.StatusOK, obj{
		"@odata.id": self, "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia", "Id": dev.id, "Name": dev.name,
		"MediaTypes": dev.types, "Image": image, "ImageName": name, "Inserted": m.inserted,
		"WriteProtected": m.writeProtected || m.image == "", "ConnectedVia": via, "TransferMethod": "Stream",
		"Actions": obj{
			"#VirtualMedia.InsertMedia": obj{"target": self + "/Actions/VirtualMedia.InsertMedia"},
			"#VirtualMedia.EjectMedia":  obj{"target": self + "/Actions/VirtualMedia.EjectMedia"},
		},
	})
}

// insertParams are InsertMedia's parameters (and PATCH's properties).
type insertParams struct {
	Image                *string
	Inserted             *bool
	WriteProtected       *bool
	TransferProtocolType *string
	UserName, Password   *string
}

func (s *Server) insertMedia(w http.ResponseWriter, r *http.Request, sys *system, dev *mediaDevice) {
	var p insertParams
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	if p.Image == nil || *p.Image == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "InsertMedia needs the Image parameter")
		return
	}
	s.insert(w, r, sys, dev, p)
}

// insert downloads p.Image and puts it in the drive; like a BMC, it
// refuses while an image is connected, and an image it cannot fetch.
func (s *Server) insert(w http.ResponseWriter, r *http.Request, sys *system, dev *mediaDevice, p insertParams) {
	u, err := url.Parse(*p.Image)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueFormatError", fmt.Sprintf("Image %q: want an http or https URL", *p.Image))
		return
	}
	if t := p.TransferProtocolType; t != nil && !strings.EqualFold(*t, u.Scheme) {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueConflict", fmt.Sprintf("TransferProtocolType %s does not match the Image URL", *t))
		return
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if dev.st.image != "" {
		writeError(w, http.StatusConflict, "Base.1.8.ResourceInUse", "virtual media "+dev.id+" is in use: eject "+dev.st.image+" first")
		return
	}
	ext := ".iso"
	if dev.id == usbID {
		ext = ".img"
	}
	file := filepath.Join(s.mediaDir, sys.id+"-"+dev.id+ext)
	if err := download(r.Context(), *p.Image, file); err != nil {
		s.log.Warn("redfish: virtual media insert failed", "system", sys.id, "image", *p.Image, "error", err)
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueError", "unable to fetch the image: "+err.Error())
		return
	}
	inserted := p.Inserted == nil || *p.Inserted
	if inserted {
		if err := dev.drive.InsertMedia(r.Context(), file); err != nil {
			_ = os.Remove(file)
			writeError(w, http.StatusInternalServerError, "Base.1.8.InternalError", err.Error())
			return
		}
	}
	*dev.st = media{image: *p.Image, inserted: inserted, writeProtected: p.WriteProtected == nil || *p.WriteProtected, file: file}
	s.log.Info("redfish: virtual media inserted", "system", sys.id, "device", dev.id, "image", *p.Image, "inserted", inserted)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ejectMedia(w http.ResponseWriter, r *http.Request, sys *system, dev *mediaDevice) {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if dev.st.image == "" {
		// Ejecting an empty drive is a no-op, as on most BMCs.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.eject(r.Context(), sys, dev); err != nil {
		writeError(w, http.StatusInternalServerError, "Base.1.8.InternalError", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// eject empties the drive and forgets the image; the caller holds sys.mu.
func (s *Server) eject(ctx context.Context, sys *system, dev *mediaDevice) error {
	if dev.st.inserted {
		if err := dev.drive.EjectMedia(ctx); err != nil {
			return err
		}
	}
	_ = os.Remove(dev.st.file)
	s.log.Info("redfish: virtual media ejected", "system", sys.id, "device", dev.id, "image", dev.st.image)
	*dev.st = media{}
	return nil
}

// patchMedia changes Image and Inserted, as BMCs without the actions (and
// some with them) allow: an Image inserts it, a null Image or Inserted
// false ejects.
func (s *Server) patchMedia(w http.ResponseWriter, r *http.Request, sys *system, dev *mediaDevice) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&raw); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	var p insertParams
	for k, v := range raw {
		var err error
		switch k {
		case "Image":
			if string(v) != "null" {
				err = json.Unmarshal(v, &p.Image)
			}
		case "Inserted":
			err = json.Unmarshal(v, &p.Inserted)
		case "WriteProtected":
			err = json.Unmarshal(v, &p.WriteProtected)
		case "TransferProtocolType":
			err = json.Unmarshal(v, &p.TransferProtocolType)
		case "UserName", "Password":
		default:
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyNotWritable", "property "+k+" is read-only")
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueTypeError", k+": "+err.Error())
			return
		}
	}
	_, hasImage := raw["Image"]
	if (hasImage && p.Image == nil) || (p.Inserted != nil && !*p.Inserted) {
		s.ejectMedia(w, r, sys, dev)
		return
	}
	if p.Image == nil || *p.Image == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "set Image to insert media, or Image null or Inserted false to eject")
		return
	}
	s.insert(w, r, sys, dev, p)
}

// download fetches url into file (through a temporary file, so a failed
// download leaves nothing).
func download(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(url + ": " + resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
