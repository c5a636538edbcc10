// Package protocol holds the wire types of the Ironic agent protocol: what
// an in-ramdisk agent (ferric-agent, or ironic-python-agent) and a conductor
// send each other.
//
// Two directions exist:
//
//   - agent → conductor API: GET /v1/lookup?addresses=MAC,... answered by a
//     LookupResponse (node + Config, which carries the one-time agent token),
//     then POST /v1/heartbeat/{node_uuid} with a HeartbeatRequest (answered 202).
//   - conductor → agent: the command API on the agent's callback URL (port
//     9999): POST /v1/commands/?wait=true|false&agent_token=T with a
//     CommandRequest, GET /v1/commands/ (a CommandList) and
//     GET /v1/commands/{id} (one CommandResult).
//
// A conductor drives a deploy like Ironic does: after the first heartbeat it
// sends deploy.get_deploy_steps (wait=true), then deploy.execute_deploy_step
// (wait=false) with Step{Interface: "deploy", Step: "write_image", Args:
// {image_info, configdrive}}; it learns the outcome from the last entry of
// GET /v1/commands/ after the agent's next heartbeat (the agent heartbeats as
// soon as an asynchronous command finishes). standby.get_partition_uuids and
// standby.power_off finish the deploy. Cleaning is the same with clean.*.
//
// Field names and JSON shapes follow Ironic 21.x and ironic-python-agent so
// that either side can be replaced by the real one.
package protocol

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Default ports and paths.
const (
	// DefaultAgentPort is the port the agent's command API listens on.
	DefaultAgentPort = 9999
	// VersionHeader carries the Ironic API microversion on agent → API calls.
	VersionHeader = "X-OpenStack-Ironic-API-Version"
	// RequestIDHeader carries ipa-global-request-id.
	RequestIDHeader = "X-OpenStack-Request-ID"
	// MaskedToken is what Ironic returns in place of an agent token it has
	// already handed out once.
	MaskedToken = "******"
	// MinTokenLength is the shortest agent token an agent accepts.
	MinTokenLength = 32
)

// APIVersion is an Ironic API microversion such as 1.68.
type APIVersion struct {
	Major, Minor int
}

// Microversions that matter to the agent protocol.
var (
	// VersionAgentVersion: heartbeat may carry agent_version.
	VersionAgentVersion = APIVersion{1, 36}
	// VersionAgentToken: lookup returns config.agent_token, heartbeat sends it.
	VersionAgentToken = APIVersion{1, 62}
	// VersionAgentVerifyCA: heartbeat may carry agent_verify_ca (auto-TLS).
	VersionAgentVerifyCA = APIVersion{1, 68}
	// VersionContinueInspection: POST /v1/continue_inspection exists
	// (built-in inspection).
	VersionContinueInspection = APIVersion{1, 84}
)

// ParseAPIVersion parses "1.68".
func ParseAPIVersion(s string) (APIVersion, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return APIVersion{}, fmt.Errorf("protocol: API version %q: want MAJOR.MINOR", s)
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return APIVersion{}, fmt.Errorf("protocol: API version %q: want MAJOR.MINOR", s)
	}
	return APIVersion{a, b}, nil
}

// String formats the version as "MAJOR.MINOR".
func (v APIVersion) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// Less reports whether v is older than w.
func (v APIVersion) Less(w APIVersion) bool {
	return v.Major < w.Major || (v.Major == w.Major && v.Minor < w.Minor)
}

// MinVersion returns the older of v and w.
func MinVersion(v, w APIVersion) APIVersion {
	if v.Less(w) {
		return v
	}
	return w
}

// RootResponse is the subset of Ironic's GET / the agent reads to learn the
// server's maximum microversion (default_version.version).
type RootResponse struct {
	DefaultVersion struct {
		ID         string `json:"id"`
		Version    string `json:"version"`
		MinVersion string `json:"min_version"`
	} `json:"default_version"`
}

// LookupResponse is the body of a successful GET /v1/lookup (and of
// POST /v1/continue_inspection with API ≥ 1.84).
type LookupResponse struct {
	Node   LookupNode   `json:"node"`
	Config LookupConfig `json:"config"`
}

// LookupNode is the restricted node view Ironic hands the ramdisk.
type LookupNode struct {
	UUID               string          `json:"uuid"`
	Properties         map[string]any  `json:"properties,omitempty"`
	InstanceInfo       map[string]any  `json:"instance_info,omitempty"`
	DriverInternalInfo map[string]any  `json:"driver_internal_info,omitempty"`
	Links              json.RawMessage `json:"links,omitempty"`
}

// LookupConfig is the agent configuration pushed by Ironic. Keys that older
// Ironic versions do not send stay at their zero value (or nil).
type LookupConfig struct {
	// HeartbeatTimeout is [api]ramdisk_heartbeat_timeout in seconds; the
	// agent heartbeats every HeartbeatTimeout × U(0.3, 0.6).
	HeartbeatTimeout float64 `json:"heartbeat_timeout,omitempty"`
	// AgentToken is the secret the conductor will present on every command;
	// MaskedToken once it has been handed out.
	AgentToken                  string          `json:"agent_token,omitempty"`
	AgentTokenRequired          bool            `json:"agent_token_required,omitempty"`
	AgentMD5ChecksumEnable      *bool           `json:"agent_md5_checksum_enable,omitempty"`
	DisableDeepImageInspection  bool            `json:"disable_deep_image_inspection,omitempty"`
	PermittedImageFormats       []string        `json:"permitted_image_formats,omitempty"`
	EnableBIOSBootloaderInstall bool            `json:"enable_bios_bootloader_install,omitempty"`
	AgentSkipBMCDetect          bool            `json:"agent_skip_bmc_detect,omitempty"`
	TLSMinVersion               string          `json:"tls_min_version,omitempty"`
	TLSCipherSuites             string          `json:"tls_cipher_suites,omitempty"`
	Metrics                     json.RawMessage `json:"metrics,omitempty"`
	MetricsStatsd               json.RawMessage `json:"metrics_statsd,omitempty"`
	AgentContainers             json.RawMessage `json:"agent_containers,omitempty"`
}

// HeartbeatRequest is the body of POST /v1/heartbeat/{node_uuid}. Ironic
// answers 202 with an empty body; 409 means the node is locked (retry), 400
// a missing or stale token (look up again).
type HeartbeatRequest struct {
	CallbackURL  string `json:"callback_url"`
	AgentToken   string `json:"agent_token,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	// AgentVerifyCA is the PEM certificate of the agent's auto-TLS listener
	// (API ≥ 1.68); the conductor uses it as the CA for callback_url.
	AgentVerifyCA      string `json:"agent_verify_ca,omitempty"`
	AgentStatus        string `json:"agent_status,omitempty"`
	AgentStatusMessage string `json:"agent_status_message,omitempty"`
}

// CommandRequest is the body of POST /v1/commands/: Name is
// "<extension>.<command>" (e.g. "standby.prepare_image"), Params an object.
type CommandRequest struct {
	Name   string          `json:"name"`
	Params json.RawMessage `json:"params"`
}

// SplitName splits "standby.prepare_image" into extension and command.
func (r CommandRequest) SplitName() (ext, cmd string, ok bool) {
	ext, cmd, ok = strings.Cut(r.Name, ".")
	if !ok || ext == "" || cmd == "" {
		return "", "", false
	}
	return ext, cmd, true
}

// CommandStatus is the state of one command.
type CommandStatus string

// Command statuses. There is no VERIFYING state in the protocol.
const (
	StatusRunning   CommandStatus = "RUNNING"
	StatusSucceeded CommandStatus = "SUCCEEDED"
	StatusFailed    CommandStatus = "FAILED"
	// StatusCleanVersionMismatch: the step's *_version does not match the
	// agent's hardware_manager_version; the conductor restarts the steps.
	StatusCleanVersionMismatch CommandStatus = "CLEAN_VERSION_MISMATCH"
	// StatusVersionMismatch is accepted by Ironic as a synonym.
	StatusVersionMismatch CommandStatus = "VERSION_MISMATCH"
)

// CommandResult is one entry of the agent's command log, exactly five keys.
// CommandName is the short name ("prepare_image"). CommandResult is null
// until the command finished (ferric-agent puts a {"progress": Progress}
// object there while an image is being written).
type CommandResult struct {
	ID            string          `json:"id"`
	CommandName   string          `json:"command_name"`
	CommandStatus CommandStatus   `json:"command_status"`
	CommandError  *CommandError   `json:"command_error"`
	CommandResult json.RawMessage `json:"command_result"`
}

// CommandError is a serialized agent error.
type CommandError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// Error implements error.
func (e *CommandError) Error() string {
	if e.Details != "" {
		return e.Type + ": " + e.Details
	}
	return e.Type + ": " + e.Message
}

// CommandList is the body of GET /v1/commands/, oldest first.
type CommandList struct {
	Commands []CommandResult `json:"commands"`
}

// Fault is the error body of the agent API (4xx/5xx), WSME style:
// faultcode is "Client" or "Server".
type Fault struct {
	Faultcode   string  `json:"faultcode"`
	Faultstring string  `json:"faultstring"`
	Debuginfo   *string `json:"debuginfo"`
}

// StatusResponse is GET /v1/status.
type StatusResponse struct {
	StartedAt float64 `json:"started_at"`
	Version   string  `json:"version"`
}

// StringResult is how a command returning text reports it: async commands
// prefix the short command name ("prepare_image: image (...) written ...").
type StringResult struct {
	Result string `json:"result"`
}

// Progress is the running state of an image write or erase, reported in
// command_result while a command is RUNNING (a ferric extension; Ironic
// ignores results of running commands).
type Progress struct {
	Phase        string `json:"phase"`
	BytesWritten int64  `json:"bytes_written"`
	// TotalBytes is 0 when unknown (compressed stream without length).
	TotalBytes int64  `json:"total_bytes"`
	Device     string `json:"device,omitempty"`
}

// ProgressResult wraps Progress as a command_result.
type ProgressResult struct {
	Progress Progress `json:"progress"`
}
