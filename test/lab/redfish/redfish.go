// Package redfish is a small Redfish BMC emulator for labs and tests. It serves
// a service root, a Systems collection with one ComputerSystem per machine
// (PowerState, Boot override with Once/Continuous and UEFI/Legacy, the
// ComputerSystem.Reset action, and BIOS attributes changed through their
// settings object or reset to defaults, both applied when the machine next
// starts), virtual media (a CD under the system and its manager, and a USB
// stick when the machine is a USBDrive:
// VirtualMedia.InsertMedia, VirtualMedia.EjectMedia and PATCH of Image and
// Inserted; the image is downloaded and put in the machine's drive),
// minimal Managers and Chassis, a session service, an UpdateService, a
// RAID controller with Volumes (storage.go) and an EventService with
// subscriptions (events.go). Requests need HTTP basic auth or a session
// token. It is enough for bmclib's gofish provider (and so for ferric's
// redfish driver) to work.
//
// Each system is backed by a Machine: a QEMU virtual machine in the lab
// (test/lab.QEMU) or a fake in tests.
package redfish

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Machine is the computer behind one Redfish system.
type Machine interface {
	// Running reports whether the machine is powered on.
	Running(ctx context.Context) (bool, error)
	// PowerOn starts the machine; nothing happens if it runs.
	PowerOn(ctx context.Context) error
	// PowerOff cuts the power; nothing happens if it is off.
	PowerOff(ctx context.Context) error
	// Shutdown presses the ACPI power button (the OS decides what to do).
	Shutdown(ctx context.Context) error
	// Reset is a hard reset of a running machine.
	Reset(ctx context.Context) error
	// InjectNMI sends a non-maskable interrupt to a running machine.
	InjectNMI(ctx context.Context) error
	// SetBootDevice sets the device the machine boots from next: "pxe",
	// "disk", "cdrom" or "bios".
	SetBootDevice(ctx context.Context, device string) error
}

// DefaultOnceRevertDelay is Config.OnceRevertDelay's default: QEMU's
// firmware (TCG) reads its boot order within a few seconds of a start.
const DefaultOnceRevertDelay = 15 * time.Second

// Reset types the emulator accepts (Actions/ComputerSystem.Reset).
var ResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart", "PushPowerButton", "PowerCycle", "ForceOn", "Nmi"}

// Boot override targets the emulator accepts, and the Machine device of each.
var bootTargets = map[string]string{
	"None":      "",
	"Pxe":       "pxe",
	"Hdd":       "disk",
	"Cd":        "cdrom",
	"BiosSetup": "bios",
	// UEFI HTTP boot starts the machine from its NIC; a machine that is
	// an HTTPBootMachine is also handed the URI (HttpBootUri), others
	// boot whatever their network offers.
	"UefiHttp": "pxe",
}

// HTTPBootMachine is a Machine that can be told the URI its firmware
// boots over UEFI HTTP at its next start ("" for none), as a BMC passes
// Boot.HttpBootUri to the firmware. The lab's QEMU machines with OVMF are
// (lab.QEMU.SetHTTPBootURI).
type HTTPBootMachine interface {
	SetHTTPBootURI(ctx context.Context, uri string) error
}

// Boot is the Boot object of a system.
type Boot struct {
	BootSourceOverrideTarget  string
	BootSourceOverrideEnabled string
	BootSourceOverrideMode    string
	// HttpBootUri is the URI of a UefiHttp override.
	HttpBootUri string //nolint:revive // the Redfish property's name
}

// Config configures a Server.
type Config struct {
	// Username and Password are the only accepted credentials.
	Username, Password string
	// Machines maps system Ids to machines; Order lists the Ids in the order
	// of the Systems collection (sorted Ids when empty).
	Machines map[string]Machine
	Order    []string
	// Hardware describes each system's components (by system Id) for
	// out-of-band inspection; missing entries get DefaultHardware.
	Hardware map[string]Hardware
	// BIOS holds each system's factory BIOS attributes (by system Id);
	// missing entries get DefaultBIOS.
	BIOS map[string]map[string]any
	// MediaDir is where virtual media images are downloaded to; empty
	// means the BMC has no virtual media. Systems whose Machine is no
	// MediaDrive have none either.
	MediaDir string
	// OnceRevertDelay is how long after a start a consumed Once boot
	// override is undone on the machine; default DefaultOnceRevertDelay.
	OnceRevertDelay time.Duration
	// Logger, nil means slog.Default(). Passwords are never logged.
	Logger *slog.Logger
}

type system struct {
	id   string
	m    Machine
	mu   sync.Mutex
	boot Boot
	bios *bios
	// secureBoot is SecureBootEnable of the system's SecureBoot resource.
	secureBoot bool
	// Firmware flashed through the UpdateService ("": the hardware's);
	// a BIOS image is pending until the system starts.
	biosVersion, bmcVersion, pendingBIOSVersion string
	// volumes built on the system's storage controller; volSeq numbers them.
	volumes []*Volume
	volSeq  int
	// pending are the volume operations a controller with apply time
	// OnReset runs when the system next starts.
	pending []*volumeOp
	// media and usb are the virtual CD's and USB stick's state.
	media, usb media
	// bootGen counts boot overrides applied, so that a delayed revert of
	// a Once override does not undo a later one.
	bootGen int
	// health is the system's Status.Health ("": OK), set by SetHealth.
	health string
}

// Server is the emulator; it is an http.Handler.
type Server struct {
	user, pass string
	log        *slog.Logger
	systems    []*system
	byID       map[string]*system
	hw         map[string]Hardware
	mediaDir   string
	onceDelay  time.Duration

	mu       sync.Mutex
	sessions map[string]string // session id -> token
	// subs are the EventService's subscriptions; subSeq numbers them.
	subs   []subscription
	subSeq int
	// tasks are the TaskService's tasks by id (volume operations applied
	// at the next reset); taskSeq numbers them.
	tasks   map[string]*task
	taskSeq int
	// leds are the IndicatorLED values set, by resource path.
	leds map[string]string
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		user:      cfg.Username,
		pass:      cfg.Password,
		log:       cfg.Logger,
		byID:      map[string]*system{},
		hw:        cfg.Hardware,
		sessions:  map[string]string{},
		tasks:     map[string]*task{},
		mediaDir:  cfg.MediaDir,
		onceDelay: cfg.OnceRevertDelay,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.onceDelay <= 0 {
		s.onceDelay = DefaultOnceRevertDelay
	}
	order := cfg.Order
	if len(order) == 0 {
		for id := range cfg.Machines {
			order = append(order, id)
		}
		slices.Sort(order)
	}
	for _, id := range order {
		m, ok := cfg.Machines[id]
		if !ok {
			continue
		}
		defaults := cfg.BIOS[id]
		if defaults == nil {
			defaults = DefaultBIOS()
		}
		sys := &system{id: id, m: m, boot: Boot{BootSourceOverrideTarget: "None", BootSourceOverrideEnabled: "Disabled", BootSourceOverrideMode: "Legacy"},
			bios: newBIOS(defaults)}
		s.systems = append(s.systems, sys)
		s.byID[id] = sys
	}
	return s
}

// BootOverride returns the current Boot object of system id.
func (s *Server) BootOverride(id string) (Boot, bool) {
	sys, ok := s.byID[id]
	if !ok {
		return Boot{}, false
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	return sys.boot, true
}

// SetHealth sets the system's Status.Health, as a BMC reports a failing
// part: "OK", "Warning" or "Critical" ("" is OK). False when there is no
// such system.
func (s *Server) SetHealth(id, health string) bool {
	sys, ok := s.byID[id]
	if !ok {
		return false
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	sys.health = health
	return true
}

type obj = map[string]any

func ref(p string) obj { return obj{"@odata.id": p} }

const root = "/redfish/v1"

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p == "/redfish" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, obj{"v1": root + "/"})
		return
	}
	if p == root && r.Method == http.MethodGet {
		// The service root is readable without credentials, as the spec says.
		writeJSON(w, http.StatusOK, s.serviceRoot())
		return
	}
	if p == root+"/SessionService/Sessions" && r.Method == http.MethodPost {
		s.createSession(w, r)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="ferric-vbmc"`)
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "authentication required")
		return
	}
	switch {
	case p == root+"/Systems" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.collection("Systems", "#ComputerSystemCollection.ComputerSystemCollection", "/Systems/"))
	case p == root+"/Managers" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.collection("Managers", "#ManagerCollection.ManagerCollection", "/Managers/"))
	case p == root+"/Chassis" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.collection("Chassis", "#ChassisCollection.ChassisCollection", "/Chassis/"))
	case p == root+"/SessionService" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
			"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 600, "Sessions": ref(root + "/SessionService/Sessions")})
	case p == root+"/SessionService/Sessions" && r.Method == http.MethodGet:
		s.listSessions(w)
	case strings.HasPrefix(p, root+"/SessionService/Sessions/"):
		s.session(w, r, strings.TrimPrefix(p, root+"/SessionService/Sessions/"))
	case p == root+"/Registries" || strings.HasPrefix(p, root+"/Registries/"):
		s.registriesRoute(w, r, strings.TrimPrefix(strings.TrimPrefix(p, root+"/Registries"), "/"))
	case strings.HasPrefix(p, root+"/Systems/"):
		s.systemRoute(w, r, strings.TrimPrefix(p, root+"/Systems/"))
	case p == root+"/EventService" || strings.HasPrefix(p, root+"/EventService/"):
		s.eventService(w, r, strings.TrimPrefix(strings.TrimPrefix(p, root+"/EventService"), "/"))
	case strings.HasPrefix(p, root+"/TaskService/Tasks/"):
		s.taskRoute(w, r, strings.TrimPrefix(p, root+"/TaskService/Tasks/"))
	case p == root+"/UpdateService" || strings.HasPrefix(p, root+"/UpdateService/"):
		s.updateService(w, r, strings.TrimPrefix(strings.TrimPrefix(p, root+"/UpdateService"), "/"))
	case strings.HasPrefix(p, root+"/Managers/") && strings.Contains(strings.TrimPrefix(p, root+"/Managers/"), "/VirtualMedia"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(p, root+"/Managers/"), "/")
		sys, ok := s.byID[id]
		if !ok {
			writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "manager "+id+" not found")
			return
		}
		s.mediaRoute(w, r, sys, root+"/Managers/"+id, strings.TrimPrefix(strings.TrimPrefix(rest, "VirtualMedia"), "/"))
	case strings.HasPrefix(p, root+"/Managers/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(p, root+"/Managers/")
		version := ""
		if sys, ok := s.byID[id]; ok {
			version = s.hardware(sys).BMCVersion
			sys.mu.Lock()
			if sys.bmcVersion != "" {
				version = sys.bmcVersion
			}
			sys.mu.Unlock()
		}
		extra := obj{"ManagerType": "BMC", "Status": obj{"State": "Enabled", "Health": "OK"},
			"FirmwareVersion": version, "Model": "ferric-vbmc"}
		if sys, ok := s.byID[id]; ok {
			if len(s.virtualMedia(sys)) > 0 {
				extra["VirtualMedia"] = ref(root + "/Managers/" + id + "/VirtualMedia")
			}
		}
		s.simple(w, id, "Managers", "#Manager.v1_5_0.Manager", extra)
	case strings.HasPrefix(p, root+"/Chassis/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(p, root+"/Chassis/")
		s.simple(w, id, "Chassis", "#Chassis.v1_10_0.Chassis", obj{"ChassisType": "RackMount", "Status": obj{"State": "Enabled", "Health": "OK"},
			"UUID": resourceUUID("chassis", id), "IndicatorLED": s.LED(p)})
	case strings.HasPrefix(p, root+"/Chassis/") && r.Method == http.MethodPatch:
		if _, ok := s.byID[strings.TrimPrefix(p, root+"/Chassis/")]; !ok {
			writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.URL.Path)
			return
		}
		s.patchLED(w, r, p)
	default:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) serviceRoot() obj {
	return obj{
		"@odata.id":      root + "/",
		"@odata.type":    "#ServiceRoot.v1_5_0.ServiceRoot",
		"Id":             "RootService",
		"Name":           "ferric virtual BMC",
		"RedfishVersion": "1.8.0",
		"UUID":           "8f0c5a1e-6f0b-4c57-9d4e-000000000000",
		"Systems":        ref(root + "/Systems"),
		"Managers":       ref(root + "/Managers"),
		"Chassis":        ref(root + "/Chassis"),
		"SessionService": ref(root + "/SessionService"),
		"UpdateService":  ref(root + "/UpdateService"),
		"EventService":   ref(root + "/EventService"),
		"Registries":     ref(root + "/Registries"),
		"Links":          obj{"Sessions": ref(root + "/SessionService/Sessions")},
	}
}

func (s *Server) collection(name, typ, sub string) obj {
	members := []obj{}
	for _, sys := range s.systems {
		members = append(members, ref(root+sub+sys.id))
	}
	return obj{"@odata.id": root + "/" + name, "@odata.type": typ, "Name": name + " Collection",
		"Members": members, "Members@odata.count": len(members)}
}

func (s *Server) simple(w http.ResponseWriter, id, coll, typ string, extra obj) {
	sys, ok := s.byID[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", coll+" "+id+" not found")
		return
	}
	o := obj{"@odata.id": root + "/" + coll + "/" + sys.id, "@odata.type": typ, "Id": sys.id, "Name": sys.id,
		"Links": obj{"ComputerSystems": []obj{ref(root + "/Systems/" + sys.id)}}}
	for k, v := range extra {
		o[k] = v
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) authorized(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, t := range s.sessions {
			if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
				return true
			}
		}
		return false
	}
	u, p, ok := r.BasicAuth()
	return ok && s.credentials(u, p)
}

func (s *Server) credentials(u, p string) bool {
	return subtle.ConstantTimeCompare([]byte(u), []byte(s.user)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.pass)) == 1
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	if !s.credentials(body.UserName, body.Password) {
		s.log.Warn("redfish: session refused", "user", body.UserName)
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "invalid credentials")
		return
	}
	id, tok := randHex(8), randHex(16)
	s.mu.Lock()
	s.sessions[id] = tok
	s.mu.Unlock()
	loc := root + "/SessionService/Sessions/" + id
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, obj{"@odata.id": loc, "@odata.type": "#Session.v1_1_0.Session", "Id": id, "Name": "Session", "UserName": body.UserName})
}

func (s *Server) listSessions(w http.ResponseWriter) {
	s.mu.Lock()
	members := []obj{}
	for id := range s.sessions {
		members = append(members, ref(root+"/SessionService/Sessions/"+id))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/SessionService/Sessions", "@odata.type": "#SessionCollection.SessionCollection",
		"Name": "Sessions", "Members": members, "Members@odata.count": len(members)})
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	_, ok := s.sessions[id]
	if ok && r.Method == http.MethodDelete {
		delete(s.sessions, id)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no session "+id)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/SessionService/Sessions/" + id, "@odata.type": "#Session.v1_1_0.Session", "Id": id, "Name": "Session"})
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" not allowed")
	}
}

func (s *Server) systemRoute(w http.ResponseWriter, r *http.Request, rest string) {
	id, action, _ := strings.Cut(rest, "/")
	sys, ok := s.byID[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "system "+id+" not found")
		return
	}
	switch {
	case action == "" && r.Method == http.MethodGet:
		s.getSystem(w, r, sys)
	case action == "" && r.Method == http.MethodPatch:
		s.patchSystem(w, r, sys)
	case action == "Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		s.reset(w, r, sys)
	case action == "SecureBoot" && r.Method == http.MethodGet:
		s.getSecureBoot(w, sys)
	case action == "SecureBoot" && r.Method == http.MethodPatch:
		s.patchSecureBoot(w, r, sys)
	case action == "VirtualMedia" || strings.HasPrefix(action, "VirtualMedia/"):
		s.mediaRoute(w, r, sys, root+"/Systems/"+id, strings.TrimPrefix(strings.TrimPrefix(action, "VirtualMedia"), "/"))
	case action == "Bios" || strings.HasPrefix(action, "Bios/"):
		s.biosRoute(w, r, sys, strings.TrimPrefix(strings.TrimPrefix(action, "Bios"), "/"))
	case r.Method == http.MethodGet && s.hardwareRoute(w, sys, action):
	case s.storageWrite(w, r, sys, action):
	case r.Method == http.MethodGet:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", r.URL.Path+" not found")
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	}
}

func (s *Server) getSystem(w http.ResponseWriter, r *http.Request, sys *system) {
	on, err := sys.m.Running(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Base.1.8.InternalError", err.Error())
		return
	}
	state := "Off"
	if on {
		state = "On"
	}
	sys.mu.Lock()
	boot, biosVersion, health := sys.boot, sys.biosVersion, sys.health
	sys.mu.Unlock()
	if health == "" {
		health = "OK"
	}
	targets := []string{"None", "Pxe", "Hdd", "Cd", "BiosSetup", "UefiHttp"}
	self := root + "/Systems/" + sys.id
	hw := s.hardware(sys)
	if biosVersion != "" {
		hw.BIOSVersion = biosVersion
	}
	o := systemHardware(self, hw)
	for k, v := range (obj{
		"@odata.id":   self,
		"@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
		"Id":          sys.id,
		"Name":        sys.id,
		"SystemType":  "Virtual",
		"PowerState":  state,
		"Status":      obj{"State": "Enabled", "Health": health, "HealthRollup": health},
		"Boot": obj{
			"BootSourceOverrideTarget":                         boot.BootSourceOverrideTarget,
			"BootSourceOverrideEnabled":                        boot.BootSourceOverrideEnabled,
			"BootSourceOverrideMode":                           boot.BootSourceOverrideMode,
			"BootSourceOverrideTarget@Redfish.AllowableValues": targets,
			"HttpBootUri":                                      boot.HttpBootUri,
		},
		"Actions": obj{"#ComputerSystem.Reset": obj{
			"target":                            self + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": ResetTypes,
		}},
		"Links":        obj{"ManagedBy": []obj{ref(root + "/Managers/" + sys.id)}, "Chassis": []obj{ref(root + "/Chassis/" + sys.id)}},
		"Bios":         ref(self + "/Bios"),
		"SecureBoot":   ref(self + "/SecureBoot"),
		"UUID":         resourceUUID("system", sys.id),
		"IndicatorLED": s.LED(self),
	}) {
		o[k] = v
	}
	if len(s.virtualMedia(sys)) > 0 {
		o["VirtualMedia"] = ref(self + "/VirtualMedia")
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) patchSystem(w http.ResponseWriter, r *http.Request, sys *system) {
	var body struct {
		Boot *struct {
			BootSourceOverrideTarget  *string
			BootSourceOverrideEnabled *string
			BootSourceOverrideMode    *string
			HttpBootUri               *string //nolint:revive // the Redfish property's name
		}
		IndicatorLED *string
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	if body.Boot == nil && body.IndicatorLED == nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", "only Boot and IndicatorLED can be changed")
		return
	}
	if body.IndicatorLED != nil {
		if !s.setLED(w, root+"/Systems/"+sys.id, *body.IndicatorLED) {
			return
		}
		if body.Boot == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	nb := sys.boot
	if t := body.Boot.BootSourceOverrideTarget; t != nil {
		if _, ok := bootTargets[*t]; !ok {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideTarget %q not supported", *t))
			return
		}
		nb.BootSourceOverrideTarget = *t
	}
	if e := body.Boot.BootSourceOverrideEnabled; e != nil {
		switch *e {
		case "Disabled", "Once", "Continuous":
			nb.BootSourceOverrideEnabled = *e
		default:
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideEnabled %q not supported", *e))
			return
		}
	}
	if m := body.Boot.BootSourceOverrideMode; m != nil {
		switch *m {
		case "UEFI", "Legacy":
			nb.BootSourceOverrideMode = *m
		default:
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideMode %q not supported", *m))
			return
		}
	}
	if u := body.Boot.HttpBootUri; u != nil {
		nb.HttpBootUri = *u
	}
	if nb.BootSourceOverrideTarget == "UefiHttp" && body.Boot.BootSourceOverrideTarget != nil {
		// As on BMCs, UEFI HTTP boot needs the UEFI boot mode and a URI.
		if nb.BootSourceOverrideMode != "UEFI" {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueConflict", "BootSourceOverrideTarget UefiHttp needs BootSourceOverrideMode UEFI")
			return
		}
		if !strings.HasPrefix(nb.HttpBootUri, "http://") && !strings.HasPrefix(nb.HttpBootUri, "https://") {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueConflict", "BootSourceOverrideTarget UefiHttp needs an http(s) HttpBootUri")
			return
		}
	}
	if body.Boot.BootSourceOverrideTarget != nil && body.Boot.BootSourceOverrideEnabled == nil && nb.BootSourceOverrideEnabled == "Disabled" {
		nb.BootSourceOverrideEnabled = "Once"
	}
	sys.boot = nb
	s.log.Info("redfish: boot override", "system", sys.id, "target", nb.BootSourceOverrideTarget, "enabled", nb.BootSourceOverrideEnabled, "mode", nb.BootSourceOverrideMode)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getSecureBoot(w http.ResponseWriter, sys *system) {
	sys.mu.Lock()
	on := sys.secureBoot
	sys.mu.Unlock()
	cur := "Disabled"
	if on {
		cur = "Enabled"
	}
	writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/Systems/" + sys.id + "/SecureBoot", "@odata.type": "#SecureBoot.v1_1_0.SecureBoot",
		"Id": "SecureBoot", "Name": "UEFI Secure Boot", "SecureBootEnable": on, "SecureBootCurrentBoot": cur, "SecureBootMode": "DeployedMode"})
}

// patchSecureBoot changes SecureBootEnable; like a real BMC it refuses to
// enable Secure Boot while the system boots in Legacy (BIOS) mode.
func (s *Server) patchSecureBoot(w http.ResponseWriter, r *http.Request, sys *system) {
	var body struct{ SecureBootEnable *bool }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	if body.SecureBootEnable == nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", "only SecureBootEnable can be changed")
		return
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if *body.SecureBootEnable && sys.boot.BootSourceOverrideMode != "UEFI" {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionNotSupported", "Secure Boot needs the UEFI boot mode")
		return
	}
	sys.secureBoot = *body.SecureBootEnable
	s.log.Info("redfish: secure boot", "system", sys.id, "enabled", sys.secureBoot)
	w.WriteHeader(http.StatusNoContent)
}

// SecureBoot reports whether Secure Boot is enabled on system id.
func (s *Server) SecureBoot(id string) (on, ok bool) {
	sys, ok := s.byID[id]
	if !ok {
		return false, false
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	return sys.secureBoot, true
}

// applyBoot gives the machine the device to start from and consumes a Once
// override. The caller holds sys.mu.
func (s *Server) applyBoot(ctx context.Context, sys *system) error {
	b := sys.boot
	sys.bootGen++ // a pending revert of an earlier override is void
	dev := bootTargets[b.BootSourceOverrideTarget]
	if hb, ok := sys.m.(HTTPBootMachine); ok {
		uri := ""
		if b.BootSourceOverrideEnabled != "Disabled" && b.BootSourceOverrideTarget == "UefiHttp" {
			uri = b.HttpBootUri
		}
		if err := hb.SetHTTPBootURI(ctx, uri); err != nil {
			return err
		}
	}
	if b.BootSourceOverrideEnabled == "Disabled" || dev == "" {
		return nil
	}
	return sys.m.SetBootDevice(ctx, dev)
}

// afterBoot reverts a consumed Once override: the next start uses the disk.
// The Boot object shows it consumed at once. After a power-on the machine's
// boot order is changed back at once too (QEMU's firmware starts with the
// command line's); after a reset of a running machine only OnceRevertDelay
// later, once its firmware has read the order it restarts with (QEMU's
// firmware reads it well after the reset), unless another override was
// applied meanwhile. The caller holds sys.mu.
func (s *Server) afterBoot(ctx context.Context, sys *system, reset bool) error {
	if sys.boot.BootSourceOverrideEnabled != "Once" || bootTargets[sys.boot.BootSourceOverrideTarget] == "" {
		return nil
	}
	sys.boot.BootSourceOverrideEnabled = "Disabled"
	sys.boot.BootSourceOverrideTarget = "None"
	sys.boot.HttpBootUri = ""
	sys.bootGen++
	gen := sys.bootGen
	if hb, ok := sys.m.(HTTPBootMachine); ok {
		if err := hb.SetHTTPBootURI(ctx, ""); err != nil {
			return err
		}
	}
	if !reset {
		return sys.m.SetBootDevice(ctx, "disk")
	}
	time.AfterFunc(s.onceDelay, func() {
		sys.mu.Lock()
		defer sys.mu.Unlock()
		if sys.bootGen != gen {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.m.SetBootDevice(ctx, "disk"); err != nil {
			s.log.Warn("redfish: reverting a one-time boot override", "system", sys.id, "error", err)
		}
	})
	return nil
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request, sys *system) {
	var body struct{ ResetType string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	ctx := r.Context()
	sys.mu.Lock()
	defer sys.mu.Unlock()
	on, err := sys.m.Running(ctx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Base.1.8.InternalError", err.Error())
		return
	}
	start := func() error {
		sys.bios.apply(s.log, sys.id)
		sys.flashBIOS()
		s.applyVolumes(sys)
		if err := s.applyBoot(ctx, sys); err != nil {
			return err
		}
		if err := sys.m.PowerOn(ctx); err != nil {
			return err
		}
		return s.afterBoot(ctx, sys, false)
	}
	restart := func() error {
		if !on {
			return start()
		}
		sys.bios.apply(s.log, sys.id)
		sys.flashBIOS()
		s.applyVolumes(sys)
		if err := s.applyBoot(ctx, sys); err != nil {
			return err
		}
		if err := sys.m.Reset(ctx); err != nil {
			return err
		}
		return s.afterBoot(ctx, sys, true)
	}
	switch body.ResetType {
	case "On", "ForceOn":
		if !on {
			err = start()
		}
	case "ForceOff":
		err = sys.m.PowerOff(ctx)
	case "GracefulShutdown":
		if on {
			err = sys.m.Shutdown(ctx)
		}
	case "PushPowerButton":
		if on {
			err = sys.m.Shutdown(ctx)
		} else {
			err = start()
		}
	case "ForceRestart", "GracefulRestart":
		// A lab machine has no graceful restart path: both reset it.
		err = restart()
	case "Nmi":
		if !on {
			writeError(w, http.StatusConflict, "Base.1.8.ActionNotSupported", "Nmi: the system is powered off")
			return
		}
		err = sys.m.InjectNMI(ctx)
	case "PowerCycle":
		if on {
			if err = sys.m.PowerOff(ctx); err == nil {
				err = start()
			}
		} else {
			err = start()
		}
	default:
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterNotSupported",
			fmt.Sprintf("ResetType %q not supported; want one of %s", body.ResetType, strings.Join(ResetTypes, ", ")))
		return
	}
	if err != nil {
		s.log.Warn("redfish: reset failed", "system", sys.id, "reset_type", body.ResetType, "error", err)
		writeError(w, http.StatusInternalServerError, "Base.1.8.InternalError", err.Error())
		return
	}
	s.log.Info("redfish: reset", "system", sys.id, "reset_type", body.ResetType)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, id, msg string) {
	writeJSON(w, code, obj{"error": obj{"code": id, "message": msg,
		"@Message.ExtendedInfo": []obj{{"MessageId": id, "Message": msg}}}})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flashBIOS makes a pending BIOS image current (the system starts; the
// caller holds sys.mu).
func (sys *system) flashBIOS() {
	if sys.pendingBIOSVersion != "" {
		sys.biosVersion, sys.pendingBIOSVersion = sys.pendingBIOSVersion, ""
	}
}
