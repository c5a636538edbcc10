package statemachine

import "fmt"

// API provision targets (the "target" of PUT /v1/nodes/{node}/states/provision).
const (
	TargetActive   = "active"
	TargetDeploy   = "deploy"
	TargetDeleted  = "deleted"
	TargetUndeploy = "undeploy"
	TargetRebuild  = "rebuild"
	TargetManage   = "manage"
	TargetProvide  = "provide"
	TargetInspect  = "inspect"
	TargetClean    = "clean"
	TargetAbort    = "abort"
	TargetAdopt    = "adopt"
	TargetRescue   = "rescue"
	TargetUnrescue = "unrescue"
	TargetUnhold   = "unhold"
	TargetService  = "service"
)

// Microversions (minor numbers of 1.x) that gate provision verbs.
const (
	VersionManage          = 4
	VersionInspect         = 6
	VersionAbort           = 13
	VersionClean           = 15
	VersionAdopt           = 17
	VersionRescue          = 38
	VersionInspectWait     = 39
	VersionInspectAbort    = 41
	VersionDeployUndeploy  = 73
	VersionUnhold          = 85
	VersionService         = 87
	VersionDeployWaitAbort = 110
)

// verbs maps API targets to events and their minimum microversion.
var verbs = []struct {
	target string
	ev     Event
	min    int
}{
	{TargetActive, EventDeploy, 0},
	{TargetDeploy, EventDeploy, VersionDeployUndeploy},
	{TargetDeleted, EventDelete, 0},
	{TargetUndeploy, EventDelete, VersionDeployUndeploy},
	{TargetRebuild, EventRebuild, 0},
	{TargetManage, EventManage, VersionManage},
	{TargetProvide, EventProvide, VersionManage},
	{TargetInspect, EventInspect, VersionInspect},
	{TargetClean, EventClean, VersionClean},
	{TargetAbort, EventAbort, VersionAbort},
	{TargetAdopt, EventAdopt, VersionAdopt},
	{TargetRescue, EventRescue, VersionRescue},
	{TargetUnrescue, EventUnrescue, VersionRescue},
	{TargetUnhold, EventUnhold, VersionUnhold},
	{TargetService, EventService, VersionService},
}

// Verb maps an API provision target to its event and the minimum API minor
// version that accepts it (0 when every version does). ok is false for a
// target Ironic does not know.
func Verb(target string) (ev Event, minVersion int, ok bool) {
	for _, v := range verbs {
		if v.target == target {
			return v.ev, v.min, true
		}
	}
	return "", 0, false
}

// Targets returns every API provision target Verb accepts.
func Targets() []string {
	out := make([]string, len(verbs))
	for i, v := range verbs {
		out[i] = v.target
	}
	return out
}

// MinVersionIn is the minimum API minor version for firing ev in state s: the
// verb's own minimum raised for abort in inspect wait (1.41) and in
// wait call-back (1.110).
func MinVersionIn(target string, s State) int {
	ev, min, ok := Verb(target)
	if !ok {
		return 0
	}
	if ev == EventAbort {
		switch s {
		case InspectWait:
			return max(min, VersionInspectAbort)
		case DeployWait:
			return max(min, VersionDeployWaitAbort)
		}
	}
	return min
}

// Check validates a provision request for a node in state s from a client
// speaking API 1.minor and returns the event to fire. The error wraps
// ErrUnknownVerb or ErrInvalidTransition (400; 409 when the node is
// reserved) or ErrVersionTooLow (406). The verb's own version is checked
// first, then the transition, then the state-specific abort versions, as
// Ironic's API does.
func Check(target string, s State, minor int) (Event, error) {
	ev, min, ok := Verb(target)
	if !ok {
		return "", fmt.Errorf("statemachine: the requested action %q can not be performed while the node is in state %q: %w", target, s, ErrUnknownVerb)
	}
	if minor < min {
		return "", fmt.Errorf("statemachine: action %q needs API version 1.%d, got 1.%d: %w", target, min, minor, ErrVersionTooLow)
	}
	if _, ok := find(s, ev); !ok {
		return "", fmt.Errorf("statemachine: the requested action %q can not be performed while the node is in state %q: %w", target, s, ErrInvalidTransition)
	}
	if need := MinVersionIn(target, s); minor < need {
		return "", fmt.Errorf("statemachine: action %q in state %q needs API version 1.%d, got 1.%d: %w", target, s, need, minor, ErrVersionTooLow)
	}
	return ev, nil
}
