package redfish

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// A system's Storage/1 is one RAID controller over the system's disks
// (Hardware.Disks, shown as its Drives). Its Volumes collection takes a
// POST of {RAIDType, CapacityBytes, Links.Drives, Name} and builds the
// volume at once (apply time Immediate), as a controller does, refusing
// what the drives cannot hold with a Redfish error: a RAID type the
// controller lacks, too few or too many drives for the level, a drive
// that is unknown or already in a volume, a capacity larger than the
// drives give. A DELETE of a volume frees its drives. A controller with
// Hardware.VolumeApplyTime OnReset takes both requests with 202 and a task
// (TaskService/Tasks/{id}, cancelled by a DELETE) and runs them when the
// system next starts. Volumes live as long as the Server, as the rest of
// its state.

// DefaultRAIDTypes are the levels a lab controller builds.
var DefaultRAIDTypes = []string{"RAID0", "RAID1", "RAID5", "RAID10"}

// Volume is one logical disk built by the emulated controller.
type Volume struct {
	ID       string
	Name     string
	RAIDType string
	// Capacity in bytes.
	Capacity int64
	// Drives are the indexes of the member drives in Hardware.Disks.
	Drives []int
}

// raidLevel describes a RAIDType: its drive counts and how many drives'
// worth of space its data gets from n drives.
type raidLevel struct {
	min, max int
	even     bool
	data     func(n int) int
}

var raidLevels = map[string]raidLevel{
	"RAID0":  {min: 1, max: 32, data: func(n int) int { return n }},
	"RAID1":  {min: 2, max: 2, data: func(int) int { return 1 }},
	"RAID5":  {min: 3, max: 32, data: func(n int) int { return n - 1 }},
	"RAID6":  {min: 4, max: 32, data: func(n int) int { return n - 2 }},
	"RAID10": {min: 4, max: 32, even: true, data: func(n int) int { return n / 2 }},
}

// Volumes returns the volumes of system id, in creation order.
func (s *Server) Volumes(id string) []Volume {
	sys, ok := s.byID[id]
	if !ok {
		return nil
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	out := make([]Volume, 0, len(sys.volumes))
	for _, v := range sys.volumes {
		c := *v
		c.Drives = slices.Clone(v.Drives)
		out = append(out, c)
	}
	return out
}

func (s *Server) storagePath(sys *system) string { return root + "/Systems/" + sys.id + "/Storage/1" }

func (s *Server) getStorage(w http.ResponseWriter, sys *system, h Hardware) {
	self := s.storagePath(sys)
	drives := []obj{}
	for i := range h.Disks {
		drives = append(drives, ref(fmt.Sprintf("%s/Drives/%d", self, i)))
	}
	writeJSON(w, http.StatusOK, obj{"@odata.id": self, "@odata.type": "#Storage.v1_7_0.Storage",
		"Id": "1", "Name": "Storage controller", "Drives": drives, "Drives@odata.count": len(drives),
		"Volumes": ref(self + "/Volumes"), "Status": enabled,
		"StorageControllers": []obj{{
			"@odata.id": self + "#/StorageControllers/0", "MemberId": "0", "Name": "ferric RAID controller",
			"Manufacturer": "ferric", "Model": "vRAID", "Status": enabled,
			"SupportedRAIDTypes":           h.RAIDTypes,
			"SupportedControllerProtocols": []string{"PCIe"}, "SupportedDeviceProtocols": []string{"SATA"},
		}},
		"StorageControllers@odata.count": 1,
	})
}

func (s *Server) volumePath(sys *system, id string) string {
	return s.storagePath(sys) + "/Volumes/" + id
}

// volumeOp is a volume creation (vol) or deletion (id) waiting for the
// system's next start.
type volumeOp struct {
	task string
	vol  *Volume
	id   string
}

// task is a TaskService task.
type task struct {
	ID, State, Message string
}

func (s *Server) newTask() *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taskSeq++
	t := &task{ID: strconv.Itoa(s.taskSeq), State: "New", Message: "The operation runs when the system restarts."}
	s.tasks[t.ID] = t
	return t
}

func (s *Server) setTask(id, state, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tasks[id]; ok {
		t.State, t.Message = state, msg
	}
}

func (t task) render() obj {
	return obj{"@odata.id": root + "/TaskService/Tasks/" + t.ID, "@odata.type": "#Task.v1_4_3.Task", "Id": t.ID,
		"Name": "Volume operation " + t.ID, "TaskState": t.State, "Messages": []obj{{"Message": t.Message}}}
}

// taskRoute reads a task, or cancels a pending one (DELETE).
func (s *Server) taskRoute(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	t, ok := s.tasks[id]
	var c task
	if ok {
		c = *t
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", fmt.Sprintf("The resource at the URI %s was not found.", r.URL.Path))
	case r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.render())
	case r.Method == http.MethodDelete:
		cancelled := false
		for _, sys := range s.systems {
			sys.mu.Lock()
			n := len(sys.pending)
			sys.pending = slices.DeleteFunc(sys.pending, func(op *volumeOp) bool { return op.task == id })
			cancelled = cancelled || len(sys.pending) != n
			sys.mu.Unlock()
		}
		if !cancelled {
			writeError(w, http.StatusConflict, "Base.1.8.ActionNotSupported", "task "+id+" is "+c.State+" and cannot be cancelled")
			return
		}
		s.setTask(id, "Cancelled", "The operation was cancelled.")
		s.log.Info("redfish: task cancelled", "task", id)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	}
}

// applyVolumes runs the pending volume operations as the system starts
// (the caller holds sys.mu).
func (s *Server) applyVolumes(sys *system) {
	ops := sys.pending
	sys.pending = nil
	for _, op := range ops {
		if op.vol == nil {
			i := slices.IndexFunc(sys.volumes, func(v *Volume) bool { return v.ID == op.id })
			if i < 0 {
				s.setTask(op.task, "Exception", "volume "+op.id+" no longer exists")
				continue
			}
			sys.volumes = slices.Delete(sys.volumes, i, i+1)
			s.setTask(op.task, "Completed", "volume "+op.id+" deleted")
			s.log.Info("redfish: volume deleted at reset", "system", sys.id, "volume", op.id)
			continue
		}
		sys.volSeq++
		v := op.vol
		v.ID = strconv.Itoa(sys.volSeq)
		if v.Name == "" {
			v.Name = "Volume " + v.ID
		}
		sys.volumes = append(sys.volumes, v)
		s.setTask(op.task, "Completed", "volume "+v.ID+" created")
		s.log.Info("redfish: volume created at reset", "system", sys.id, "volume", v.ID, "raid_type", v.RAIDType, "drives", v.Drives)
	}
}

func applyTimes(h Hardware) []string {
	if h.VolumeApplyTime == "OnReset" {
		return []string{"OnReset"}
	}
	return []string{"Immediate"}
}

func (s *Server) listVolumes(w http.ResponseWriter, sys *system) {
	sys.mu.Lock()
	members := []obj{}
	for _, v := range sys.volumes {
		members = append(members, ref(s.volumePath(sys, v.ID)))
	}
	sys.mu.Unlock()
	writeJSON(w, http.StatusOK, obj{"@odata.id": s.storagePath(sys) + "/Volumes", "@odata.type": "#VolumeCollection.VolumeCollection",
		"Name": "Volumes", "Members": members, "Members@odata.count": len(members),
		"@Redfish.OperationApplyTimeSupport": obj{"@odata.type": "#Settings.v1_3_3.OperationApplyTimeSupport",
			"SupportedValues": applyTimes(s.hardware(sys))}})
}

func (s *Server) getVolume(w http.ResponseWriter, sys *system, id string) {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	i := slices.IndexFunc(sys.volumes, func(v *Volume) bool { return v.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no volume "+id)
		return
	}
	v := sys.volumes[i]
	drives := []obj{}
	for _, d := range v.Drives {
		drives = append(drives, ref(fmt.Sprintf("%s/Drives/%d", s.storagePath(sys), d)))
	}
	writeJSON(w, http.StatusOK, obj{"@odata.id": s.volumePath(sys, v.ID), "@odata.type": "#Volume.v1_5_0.Volume",
		"Id": v.ID, "Name": v.Name, "RAIDType": v.RAIDType, "CapacityBytes": v.Capacity, "VolumeType": volumeType(v.RAIDType),
		"Status": enabled, "Links": obj{"Drives": drives, "Drives@odata.count": len(drives)}})
}

// volumeType is the deprecated VolumeType older clients read.
func volumeType(raid string) string {
	switch raid {
	case "RAID0":
		return "StripedWithParity"
	case "RAID1":
		return "Mirrored"
	case "RAID10":
		return "SpannedMirrors"
	}
	return "StripedWithParity"
}

// driveVolumes links drive i to the volume holding it.
func (s *Server) driveVolumes(sys *system, i int) []obj {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	out := []obj{}
	for _, v := range sys.volumes {
		if slices.Contains(v.Drives, i) {
			out = append(out, ref(s.volumePath(sys, v.ID)))
		}
	}
	return out
}

// storageWrite serves the POST of a volume and the DELETE of one; false
// when the request is neither.
func (s *Server) storageWrite(w http.ResponseWriter, r *http.Request, sys *system, sub string) bool {
	if s.hardware(sys).Storage == "simple" {
		return false
	}
	switch {
	case sub == "Storage/1/Volumes" && r.Method == http.MethodPost:
		s.createVolume(w, r, sys)
	case strings.HasPrefix(sub, "Storage/1/Volumes/") && r.Method == http.MethodDelete:
		s.deleteVolume(w, sys, strings.TrimPrefix(sub, "Storage/1/Volumes/"))
	case strings.HasPrefix(sub, "Storage/1/Drives/") && r.Method == http.MethodPatch:
		i, err := strconv.Atoi(strings.TrimPrefix(sub, "Storage/1/Drives/"))
		if err != nil || i < 0 || i >= len(s.hardware(sys).Disks) || strconv.Itoa(i) != strings.TrimPrefix(sub, "Storage/1/Drives/") {
			writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no drive at "+r.URL.Path)
			return true
		}
		s.patchLED(w, r, root+"/Systems/"+sys.id+"/"+sub)
	default:
		return false
	}
	return true
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request, sys *system) {
	var body struct {
		Name          string
		RAIDType      string
		CapacityBytes *int64
		Links         struct {
			Drives []struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	h := s.hardware(sys)
	if body.RAIDType == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "The property RAIDType is a required property and must be included in the request.")
		return
	}
	lvl, known := raidLevels[body.RAIDType]
	if !known || !slices.Contains(h.RAIDTypes, body.RAIDType) {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList",
			fmt.Sprintf("The value %s for the property RAIDType is not in the list of acceptable values (%s).", body.RAIDType, strings.Join(h.RAIDTypes, ", ")))
		return
	}
	if len(body.Links.Drives) == 0 {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "The property Links/Drives is a required property and must be included in the request.")
		return
	}
	sys.mu.Lock()
	defer sys.mu.Unlock()
	used := map[int]string{}
	for _, v := range sys.volumes {
		if slices.ContainsFunc(sys.pending, func(op *volumeOp) bool { return op.vol == nil && op.id == v.ID }) {
			continue // deleted at the next reset, before the creations
		}
		for _, d := range v.Drives {
			used[d] = v.ID
		}
	}
	for _, op := range sys.pending {
		if op.vol != nil {
			for _, d := range op.vol.Drives {
				used[d] = "of task " + op.task
			}
		}
	}
	var drives []int
	prefix := s.storagePath(sys) + "/Drives/"
	for _, d := range body.Links.Drives {
		rest, ok := strings.CutPrefix(strings.TrimSuffix(d.ID, "/"), prefix)
		i, err := strconv.Atoi(rest)
		if !ok || err != nil || i < 0 || i >= len(h.Disks) || strconv.Itoa(i) != rest {
			writeError(w, http.StatusBadRequest, "Base.1.8.ResourceMissingAtURI", fmt.Sprintf("The resource at the URI %s was not found.", d.ID))
			return
		}
		if vol, busy := used[i]; busy {
			writeError(w, http.StatusBadRequest, "Base.1.8.ResourceInUse",
				fmt.Sprintf("The drive %s is a member of volume %s and cannot be used for another volume.", d.ID, vol))
			return
		}
		if slices.Contains(drives, i) {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueConflict", fmt.Sprintf("The drive %s is listed twice.", d.ID))
			return
		}
		drives = append(drives, i)
	}
	n := len(drives)
	if n < lvl.min || n > lvl.max || (lvl.even && n%2 != 0) {
		want := fmt.Sprintf("from %d to %d", lvl.min, lvl.max)
		if lvl.min == lvl.max {
			want = strconv.Itoa(lvl.min)
		}
		if lvl.even {
			want = "an even number " + want
		}
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueIncorrect",
			fmt.Sprintf("%s needs %s drives; %d were given.", body.RAIDType, want, n))
		return
	}
	smallest := h.Disks[drives[0]].Size
	for _, d := range drives {
		smallest = min(smallest, h.Disks[d].Size)
	}
	maxCap := smallest * int64(lvl.data(n))
	capacity := maxCap
	if body.CapacityBytes != nil {
		capacity = *body.CapacityBytes
		if capacity <= 0 || capacity > maxCap {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueOutOfRange",
				fmt.Sprintf("The value %d for the property CapacityBytes is out of range: the drives of this %s volume hold at most %d bytes.", capacity, body.RAIDType, maxCap))
			return
		}
	}
	if h.VolumeApplyTime == "OnReset" {
		t := s.newTask()
		sys.pending = append(sys.pending, &volumeOp{task: t.ID, vol: &Volume{Name: body.Name, RAIDType: body.RAIDType, Capacity: capacity, Drives: drives}})
		s.log.Info("redfish: volume creation pending until reset", "system", sys.id, "task", t.ID, "raid_type", body.RAIDType)
		w.Header().Set("Location", root+"/TaskService/Tasks/"+t.ID)
		writeJSON(w, http.StatusAccepted, t.render())
		return
	}
	sys.volSeq++
	v := &Volume{ID: strconv.Itoa(sys.volSeq), Name: body.Name, RAIDType: body.RAIDType, Capacity: capacity, Drives: drives}
	if v.Name == "" {
		v.Name = "Volume " + v.ID
	}
	sys.volumes = append(sys.volumes, v)
	s.log.Info("redfish: volume created", "system", sys.id, "volume", v.ID, "raid_type", v.RAIDType, "capacity", v.Capacity, "drives", v.Drives)
	w.Header().Set("Location", s.volumePath(sys, v.ID))
	writeJSON(w, http.StatusCreated, obj{"@odata.id": s.volumePath(sys, v.ID), "@odata.type": "#Volume.v1_5_0.Volume",
		"Id": v.ID, "Name": v.Name, "RAIDType": v.RAIDType, "CapacityBytes": v.Capacity})
}

func (s *Server) deleteVolume(w http.ResponseWriter, sys *system, id string) {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	i := slices.IndexFunc(sys.volumes, func(v *Volume) bool { return v.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no volume "+id)
		return
	}
	if s.hardware(sys).VolumeApplyTime == "OnReset" {
		t := s.newTask()
		sys.pending = append(sys.pending, &volumeOp{task: t.ID, id: id})
		w.Header().Set("Location", root+"/TaskService/Tasks/"+t.ID)
		writeJSON(w, http.StatusAccepted, t.render())
		return
	}
	sys.volumes = slices.Delete(sys.volumes, i, i+1)
	s.log.Info("redfish: volume deleted", "system", sys.id, "volume", id)
	w.WriteHeader(http.StatusNoContent)
}
