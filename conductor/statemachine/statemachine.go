// Package statemachine is the provision state machine of a bare-metal node,
// with the states, events and transitions of OpenStack Ironic so that clients
// written for Ironic see the same provision_state and target_provision_state
// values at every step.
//
// The package is pure data and functions: it performs no I/O and keeps no
// state. The conductor asks Next (or NextTo) for the state a node moves to
// when an event happens and stores the result; the API layer asks Check
// whether a PUT /v1/nodes/{node}/states/provision target may be fired.
package statemachine

import (
	"errors"
	"fmt"
	"slices"
)

// State is a node's provision state as Ironic names it on the wire.
type State string

// NoState is the empty state: a node with no target_provision_state, or
// provision_state shown as JSON null to old clients.
const NoState State = ""

// Stable states: a node stays in them until someone asks for a change.
const (
	Enroll     State = "enroll"
	Manageable State = "manageable"
	Available  State = "available"
	Active     State = "active"
	Error      State = "error"
	Rescue     State = "rescue"
)

// Verification.
const (
	Verifying State = "verifying"
)

// Deployment.
const (
	Deploying    State = "deploying"
	DeployWait   State = "wait call-back"
	DeployFailed State = "deploy failed"
	DeployHold   State = "deploy hold"
)

// Tear-down and cleaning.
const (
	Deleting    State = "deleting"
	Cleaning    State = "cleaning"
	CleanWait   State = "clean wait"
	CleanFailed State = "clean failed"
	CleanHold   State = "clean hold"
)

// Inspection.
const (
	Inspecting    State = "inspecting"
	InspectWait   State = "inspect wait"
	InspectFailed State = "inspect failed"
)

// Adoption.
const (
	Adopting    State = "adopting"
	AdoptFailed State = "adopt failed"
)

// Rescue.
const (
	Rescuing       State = "rescuing"
	RescueWait     State = "rescue wait"
	RescueFailed   State = "rescue failed"
	Unrescuing     State = "unrescuing"
	UnrescueFailed State = "unrescue failed"
)

// Servicing.
const (
	Servicing     State = "servicing"
	ServiceWait   State = "service wait"
	ServiceFailed State = "service failed"
	ServiceHold   State = "service hold"
)

// Event is what moves a node from one state to another. User events are
// the verbs of the provision API (see Verb); internal events are fired by
// the conductor as work progresses.
type Event string

// User events (verbs).
const (
	EventDeploy   Event = "deploy"
	EventDelete   Event = "delete"
	EventRebuild  Event = "rebuild"
	EventManage   Event = "manage"
	EventProvide  Event = "provide"
	EventInspect  Event = "inspect"
	EventClean    Event = "clean"
	EventAbort    Event = "abort"
	EventAdopt    Event = "adopt"
	EventRescue   Event = "rescue"
	EventUnrescue Event = "unrescue"
	EventUnhold   Event = "unhold"
	EventService  Event = "service"
)

// Internal events. A timeout in a wait state and a conductor restart during
// a transient state are both EventFail (see FailState).
const (
	EventDone   Event = "done"
	EventFail   Event = "fail"
	EventWait   Event = "wait"
	EventResume Event = "resume"
	EventHold   Event = "hold"
)

// Errors. Match them with errors.Is.
var (
	// ErrInvalidTransition: the event is not allowed in the node's state
	// (Ironic answers 400 InvalidStateRequested, or 409 while the node is
	// reserved).
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrUnknownVerb: the provision target is not one Ironic knows (400).
	ErrUnknownVerb = errors.New("unknown provision target")
	// ErrVersionTooLow: the verb needs a newer API microversion (406).
	ErrVersionTooLow = errors.New("provision target needs a newer API version")
	// ErrInvalidTarget: an explicit target_provision_state is not a stable state.
	ErrInvalidTarget = errors.New("invalid target state")
	// ErrUnknownState: the string is not a provision state.
	ErrUnknownState = errors.New("unknown provision state")
)

// Transition is one edge of the machine. Target, when set, is the
// target_provision_state the transition records instead of the default of
// the destination state (manual cleaning from manageable targets manageable).
type Transition struct {
	From   State
	Event  Event
	To     State
	Target State
}

// stateInfo is a state's row in the state table.
type stateInfo struct {
	stable bool
	// target is the default target_provision_state of a node entering the
	// state; NoState for stable states.
	target State
}

// states lists every provision state, in the order Ironic declares them.
var states = []struct {
	s State
	stateInfo
}{
	{Enroll, stateInfo{stable: true}},
	{Manageable, stateInfo{stable: true}},
	{Available, stateInfo{stable: true}},
	{Active, stateInfo{stable: true}},
	{Error, stateInfo{stable: true}},
	{Rescue, stateInfo{stable: true}},
	{Verifying, stateInfo{target: Manageable}},
	{Deploying, stateInfo{target: Active}},
	{DeployWait, stateInfo{target: Active}},
	{DeployFailed, stateInfo{target: Active}},
	{DeployHold, stateInfo{target: Active}},
	{Cleaning, stateInfo{target: Available}},
	{CleanWait, stateInfo{target: Available}},
	{CleanFailed, stateInfo{target: Available}},
	{CleanHold, stateInfo{target: Available}},
	{Deleting, stateInfo{target: Available}},
	{Inspecting, stateInfo{target: Manageable}},
	{InspectFailed, stateInfo{target: Manageable}},
	{InspectWait, stateInfo{target: Manageable}},
	{Adopting, stateInfo{target: Active}},
	{AdoptFailed, stateInfo{target: Active}},
	{Rescuing, stateInfo{target: Rescue}},
	{RescueWait, stateInfo{target: Rescue}},
	{RescueFailed, stateInfo{target: Rescue}},
	{Unrescuing, stateInfo{target: Active}},
	{UnrescueFailed, stateInfo{target: Active}},
	{Servicing, stateInfo{target: Active}},
	{ServiceWait, stateInfo{target: Active}},
	{ServiceFailed, stateInfo{target: Active}},
	{ServiceHold, stateInfo{target: Active}},
}

// transitions is the whole machine.
var transitions = []Transition{
	// Verification.
	{Enroll, EventManage, Verifying, NoState},
	{Verifying, EventDone, Manageable, NoState},
	{Verifying, EventFail, Enroll, NoState},

	// Deployment.
	{Available, EventDeploy, Deploying, NoState},
	{Deploying, EventFail, DeployFailed, NoState},
	{Deploying, EventWait, DeployWait, NoState},
	{Deploying, EventHold, DeployHold, NoState},
	{Deploying, EventDone, Active, NoState},
	{DeployWait, EventHold, DeployHold, NoState},
	{DeployWait, EventResume, Deploying, NoState},
	{DeployWait, EventFail, DeployFailed, NoState},
	{DeployWait, EventAbort, DeployFailed, NoState},
	{DeployWait, EventDelete, Deleting, NoState},
	{DeployHold, EventUnhold, DeployWait, NoState},
	{DeployHold, EventAbort, DeployFailed, NoState},
	{DeployFailed, EventRebuild, Deploying, NoState},
	{DeployFailed, EventDeploy, Deploying, NoState},
	{DeployFailed, EventDelete, Deleting, NoState},
	{Active, EventRebuild, Deploying, NoState},
	{Active, EventDelete, Deleting, NoState},
	{Error, EventRebuild, Deploying, NoState},
	{Error, EventDelete, Deleting, NoState},

	// Tear-down and cleaning.
	{Deleting, EventFail, Error, NoState},
	{Deleting, EventClean, Cleaning, NoState},
	{Cleaning, EventDone, Available, NoState},
	{Cleaning, EventFail, CleanFailed, NoState},
	{Cleaning, EventWait, CleanWait, NoState},
	{Cleaning, EventHold, CleanHold, NoState},
	{Cleaning, EventManage, Manageable, NoState},
	{CleanWait, EventFail, CleanFailed, NoState},
	{CleanWait, EventAbort, CleanFailed, NoState},
	{CleanWait, EventHold, CleanHold, NoState},
	{CleanWait, EventResume, Cleaning, NoState},
	{CleanHold, EventAbort, CleanFailed, NoState},
	{CleanHold, EventUnhold, CleanWait, NoState},
	{CleanFailed, EventManage, Manageable, NoState},
	{Manageable, EventProvide, Cleaning, NoState},
	{Manageable, EventClean, Cleaning, Manageable},
	{Available, EventManage, Manageable, NoState},

	// Inspection.
	{Manageable, EventInspect, Inspecting, NoState},
	{Inspecting, EventDone, Manageable, NoState},
	{Inspecting, EventFail, InspectFailed, NoState},
	{Inspecting, EventWait, InspectWait, NoState},
	{InspectWait, EventDone, Manageable, NoState},
	{InspectWait, EventFail, InspectFailed, NoState},
	{InspectWait, EventAbort, InspectFailed, NoState},
	{InspectWait, EventResume, Inspecting, NoState},
	{InspectFailed, EventManage, Manageable, NoState},
	{InspectFailed, EventInspect, Inspecting, NoState},

	// Rescue.
	{Active, EventRescue, Rescuing, NoState},
	{Rescuing, EventDone, Rescue, NoState},
	{Rescuing, EventWait, RescueWait, NoState},
	{Rescuing, EventFail, RescueFailed, NoState},
	{RescueWait, EventResume, Rescuing, NoState},
	{RescueWait, EventFail, RescueFailed, NoState},
	{RescueWait, EventAbort, RescueFailed, NoState},
	{RescueWait, EventDelete, Deleting, NoState},
	{Rescue, EventRescue, Rescuing, NoState},
	{Rescue, EventUnrescue, Unrescuing, NoState},
	{Rescue, EventDelete, Deleting, NoState},
	{RescueFailed, EventRescue, Rescuing, NoState},
	{RescueFailed, EventUnrescue, Unrescuing, NoState},
	{RescueFailed, EventDelete, Deleting, NoState},
	{Unrescuing, EventDone, Active, NoState},
	{Unrescuing, EventFail, UnrescueFailed, NoState},
	{UnrescueFailed, EventRescue, Rescuing, NoState},
	{UnrescueFailed, EventUnrescue, Unrescuing, NoState},
	{UnrescueFailed, EventDelete, Deleting, NoState},

	// Adoption.
	{Manageable, EventAdopt, Adopting, NoState},
	{Adopting, EventDone, Active, NoState},
	{Adopting, EventFail, AdoptFailed, NoState},
	{AdoptFailed, EventAdopt, Adopting, NoState},
	{AdoptFailed, EventManage, Manageable, NoState},

	// Servicing.
	{Active, EventService, Servicing, NoState},
	{Servicing, EventDone, Active, NoState},
	{Servicing, EventFail, ServiceFailed, NoState},
	{Servicing, EventWait, ServiceWait, NoState},
	{Servicing, EventHold, ServiceHold, NoState},
	{ServiceWait, EventHold, ServiceHold, NoState},
	{ServiceWait, EventResume, Servicing, NoState},
	{ServiceWait, EventFail, ServiceFailed, NoState},
	{ServiceWait, EventAbort, ServiceFailed, NoState},
	{ServiceWait, EventDelete, Deleting, NoState},
	{ServiceHold, EventService, Servicing, NoState},
	{ServiceHold, EventUnhold, ServiceWait, NoState},
	{ServiceHold, EventFail, ServiceFailed, NoState},
	{ServiceHold, EventAbort, ServiceFailed, NoState},
	{ServiceFailed, EventService, Servicing, NoState},
	{ServiceFailed, EventRescue, Rescuing, NoState},
	{ServiceFailed, EventWait, ServiceWait, NoState},
	{ServiceFailed, EventHold, ServiceHold, NoState},
	{ServiceFailed, EventDelete, Deleting, NoState},
	{ServiceFailed, EventAbort, Active, NoState},
}

// find scans the table; it is small (30 states, ~90 edges), and a scan keeps
// the package free of derived package-level state.
func find(from State, ev Event) (Transition, bool) {
	for _, t := range transitions {
		if t.From == from && t.Event == ev {
			return t, true
		}
	}
	return Transition{}, false
}

func info(s State) (stateInfo, bool) {
	for _, e := range states {
		if e.s == s {
			return e.stateInfo, true
		}
	}
	return stateInfo{}, false
}

// All returns every provision state, stable ones first.
func All() []State {
	out := make([]State, len(states))
	for i, e := range states {
		out[i] = e.s
	}
	return out
}

// Transitions returns a copy of the transition table.
func Transitions() []Transition { return slices.Clone(transitions) }

// Events returns the events allowed in state s, in table order.
func Events(s State) []Event {
	var out []Event
	for _, t := range transitions {
		if t.From == s {
			out = append(out, t.Event)
		}
	}
	return out
}

// KnownState reports whether s is a provision state, as the provision_state
// list filter requires (an unknown value there is a 400).
func KnownState(s string) bool {
	_, ok := info(State(s))
	return ok
}

// Parse returns s as a State, or ErrUnknownState.
func Parse(s string) (State, error) {
	if !KnownState(s) {
		return NoState, fmt.Errorf("statemachine: %q: %w", s, ErrUnknownState)
	}
	return State(s), nil
}

// IsStable reports whether s is one of the states a node stays in until a
// user asks for a change: enroll, manageable, available, active, error, rescue.
func IsStable(s State) bool {
	i, ok := info(s)
	return ok && i.stable
}

// IsUnstable reports whether s changes without an external request (the
// working and wait states). Failed and hold states are neither stable nor
// unstable: they wait for an operator.
func IsUnstable(s State) bool {
	switch s {
	case Deploying, DeployWait, Cleaning, CleanWait, Verifying, Deleting,
		Inspecting, InspectWait, Adopting, Rescuing, RescueWait, Unrescuing,
		Servicing, ServiceWait:
		return true
	}
	return false
}

// IsFailure reports whether s is one of the "... failed" states.
func IsFailure(s State) bool {
	switch s {
	case DeployFailed, CleanFailed, InspectFailed, RescueFailed,
		UnrescueFailed, AdoptFailed, ServiceFailed:
		return true
	}
	return false
}

// IsWait reports whether s waits for the ramdisk (or an out-of-band
// operation) and so is subject to a timeout (1800 s by default), after
// which the conductor fires EventFail.
func IsWait(s State) bool {
	switch s {
	case DeployWait, CleanWait, InspectWait, RescueWait, ServiceWait:
		return true
	}
	return false
}

// DefaultTarget is the target_provision_state a node entering s gets unless
// the transition names another one; NoState for stable states.
func DefaultTarget(s State) State {
	i, _ := info(s)
	return i.target
}

// Next returns the state a node in state moves to on ev, and the
// target_provision_state to record with it (NoState when the node lands in a
// stable state). The error wraps ErrInvalidTransition when ev is not allowed
// in state.
func Next(state State, ev Event) (next, target State, err error) {
	t, ok := find(state, ev)
	if !ok {
		return NoState, NoState, fmt.Errorf("statemachine: event %q in state %q: %w", ev, state, ErrInvalidTransition)
	}
	if IsStable(t.To) {
		return t.To, NoState, nil
	}
	if t.Target != NoState {
		return t.To, t.Target, nil
	}
	return t.To, DefaultTarget(t.To), nil
}

// NextTo is Next with an explicit target_provision_state, which must be a
// stable state. The conductor uses it to keep a manual clean's target
// (manageable) across resume and fail. As in Ironic, landing in a stable
// state clears the target regardless.
func NextTo(state State, ev Event, target State) (next, tgt State, err error) {
	if target == NoState {
		return Next(state, ev)
	}
	if !IsStable(target) {
		return NoState, NoState, fmt.Errorf("statemachine: target %q: %w", target, ErrInvalidTarget)
	}
	next, _, err = Next(state, ev)
	if err != nil {
		return NoState, NoState, err
	}
	if IsStable(next) {
		return next, NoState, nil
	}
	return next, target, nil
}

// FailState returns where a node stuck in the transient state s goes when
// its conductor dies or its wait times out: the destination of EventFail.
// ok is false for states that have nowhere to fail to (stable, failed and
// hold states).
func FailState(s State) (State, bool) {
	if !IsUnstable(s) {
		return NoState, false
	}
	t, ok := find(s, EventFail)
	if !ok {
		return NoState, false
	}
	return t.To, true
}

// FailOnRestart reports whether a node found in s when a conductor takes it
// over (start-up or orphan recovery) is moved to FailState(s): the working
// states that cannot be resumed. Wait states are left to their timeouts.
func FailOnRestart(s State) bool {
	switch s {
	case Deploying, Cleaning, Verifying, Inspecting, Adopting, Rescuing,
		Unrescuing, Deleting, Servicing:
		return true
	}
	return false
}

// LookupAllowed reports whether GET /v1/lookup may return a node in s.
// With fast-track, lookups are also allowed in enroll, manageable,
// available, servicing and service hold.
func LookupAllowed(s State, fastTrack bool) bool {
	switch s {
	case Deploying, DeployWait, Cleaning, CleanWait, Inspecting, InspectWait,
		Rescuing, RescueWait, ServiceWait:
		return true
	case Enroll, Manageable, Available, Servicing, ServiceHold:
		return fastTrack
	}
	return false
}

// UpdateAllowed reports whether PATCH may change a node in s while it has a
// target_provision_state (Ironic's UPDATE_ALLOWED_STATES). Outside these a
// node in transition answers 409. Ironic's list also names "service", which is
// a verb and never a node's state; it is left out here.
func UpdateAllowed(s State) bool {
	switch s {
	case DeployFailed, Inspecting, InspectFailed, InspectWait, CleanFailed,
		Error, Verifying, AdoptFailed, RescueFailed, UnrescueFailed,
		ServiceHold, ServiceFailed:
		return true
	}
	return false
}

// DeleteAllowed reports whether DELETE /v1/nodes/{node} may remove a node in
// s when it is not in maintenance (in maintenance any state is allowed).
// allowAvailable mirrors [conductor]allow_deleting_available_nodes.
func DeleteAllowed(s State, allowAvailable bool) bool {
	switch s {
	case Manageable, Enroll, AdoptFailed:
		return true
	case Available:
		return allowAvailable
	}
	return false
}

// ForVersion rewrites a provision_state for a client speaking API 1.minor:
// below 1.2 available is shown as null (NoState), below 1.39 inspect wait is
// shown as inspecting. Other states are returned unchanged.
func ForVersion(s State, minor int) State {
	switch {
	case s == Available && minor < 2:
		return NoState
	case s == InspectWait && minor < 39:
		return Inspecting
	}
	return s
}

// InitialState is the state of a newly created node: enroll from API 1.11,
// available before.
func InitialState(minor int) State {
	if minor >= 11 {
		return Enroll
	}
	return Available
}
