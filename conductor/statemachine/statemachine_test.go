package statemachine

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// userVerbs is written independently of the transition table, from the
// state/verb table of the design (ironic-api.md §3.1) and Ironic's
// state_machine.py: for every state, the API targets it accepts and where
// they lead. Every target not listed must be refused.
var userVerbs = map[State]map[string]State{
	Enroll:     {"manage": Verifying},
	Verifying:  {},
	Manageable: {"provide": Cleaning, "clean": Cleaning, "inspect": Inspecting, "adopt": Adopting},
	Available:  {"active": Deploying, "deploy": Deploying, "manage": Manageable},
	Deploying:  {},
	DeployWait: {"deleted": Deleting, "undeploy": Deleting, "abort": DeployFailed},
	DeployHold: {"unhold": DeployWait, "abort": DeployFailed},
	DeployFailed: {"active": Deploying, "deploy": Deploying, "rebuild": Deploying,
		"deleted": Deleting, "undeploy": Deleting},
	Active: {"rebuild": Deploying, "deleted": Deleting, "undeploy": Deleting,
		"rescue": Rescuing, "service": Servicing},
	// The conductor fires clean itself when tear-down finishes; the API
	// would accept it too (and answer 409 because the node is reserved).
	Deleting: {"clean": Cleaning},
	// manage ends a manual clean; the conductor fires it.
	Cleaning:      {"manage": Manageable},
	CleanWait:     {"abort": CleanFailed},
	CleanHold:     {"unhold": CleanWait, "abort": CleanFailed},
	CleanFailed:   {"manage": Manageable},
	Inspecting:    {},
	InspectWait:   {"abort": InspectFailed},
	InspectFailed: {"manage": Manageable, "inspect": Inspecting},
	Adopting:      {},
	AdoptFailed:   {"adopt": Adopting, "manage": Manageable},
	Error:         {"rebuild": Deploying, "deleted": Deleting, "undeploy": Deleting},
	Rescuing:      {},
	RescueWait:    {"abort": RescueFailed, "deleted": Deleting, "undeploy": Deleting},
	Rescue: {"rescue": Rescuing, "unrescue": Unrescuing,
		"deleted": Deleting, "undeploy": Deleting},
	RescueFailed: {"rescue": Rescuing, "unrescue": Unrescuing,
		"deleted": Deleting, "undeploy": Deleting},
	Unrescuing: {},
	UnrescueFailed: {"rescue": Rescuing, "unrescue": Unrescuing,
		"deleted": Deleting, "undeploy": Deleting},
	Servicing:   {},
	ServiceWait: {"abort": ServiceFailed, "deleted": Deleting, "undeploy": Deleting},
	ServiceHold: {"abort": ServiceFailed, "unhold": ServiceWait, "service": Servicing},
	ServiceFailed: {"service": Servicing, "rescue": Rescuing, "deleted": Deleting,
		"undeploy": Deleting, "abort": Active},
}

// internalEvents is the same for the conductor's own events.
var internalEvents = map[State]map[Event]State{
	Verifying:     {EventDone: Manageable, EventFail: Enroll},
	Deploying:     {EventDone: Active, EventFail: DeployFailed, EventWait: DeployWait, EventHold: DeployHold},
	DeployWait:    {EventResume: Deploying, EventFail: DeployFailed, EventHold: DeployHold},
	Deleting:      {EventFail: Error},
	Cleaning:      {EventDone: Available, EventFail: CleanFailed, EventWait: CleanWait, EventHold: CleanHold},
	CleanWait:     {EventResume: Cleaning, EventFail: CleanFailed, EventHold: CleanHold},
	Inspecting:    {EventDone: Manageable, EventFail: InspectFailed, EventWait: InspectWait},
	InspectWait:   {EventDone: Manageable, EventFail: InspectFailed, EventResume: Inspecting},
	Adopting:      {EventDone: Active, EventFail: AdoptFailed},
	Rescuing:      {EventDone: Rescue, EventFail: RescueFailed, EventWait: RescueWait},
	RescueWait:    {EventResume: Rescuing, EventFail: RescueFailed},
	Unrescuing:    {EventDone: Active, EventFail: UnrescueFailed},
	Servicing:     {EventDone: Active, EventFail: ServiceFailed, EventWait: ServiceWait, EventHold: ServiceHold},
	ServiceWait:   {EventResume: Servicing, EventFail: ServiceFailed, EventHold: ServiceHold},
	ServiceHold:   {EventFail: ServiceFailed},
	ServiceFailed: {EventWait: ServiceWait, EventHold: ServiceHold},
}

var allInternal = []Event{EventDone, EventFail, EventWait, EventResume, EventHold}

func TestAllStates(t *testing.T) {
	want := []string{
		"enroll", "manageable", "available", "active", "error", "rescue",
		"verifying", "deploying", "wait call-back", "deploy failed", "deploy hold",
		"cleaning", "clean wait", "clean failed", "clean hold", "deleting",
		"inspecting", "inspect failed", "inspect wait", "adopting", "adopt failed",
		"rescuing", "rescue wait", "rescue failed", "unrescuing", "unrescue failed",
		"servicing", "service wait", "service failed", "service hold",
	}
	var got []string
	for _, s := range All() {
		got = append(got, string(s))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All() mismatch (-want +got):\n%s", diff)
	}
	if len(userVerbs) != len(want) {
		t.Errorf("expectation table covers %d states, want %d", len(userVerbs), len(want))
	}
}

func TestUserVerbsEveryStateEveryTarget(t *testing.T) {
	for _, s := range All() {
		exp, ok := userVerbs[s]
		if !ok {
			t.Fatalf("state %q missing from expectation table", s)
		}
		for _, target := range Targets() {
			t.Run(string(s)+"/"+target, func(t *testing.T) {
				ev, _, ok := Verb(target)
				if !ok {
					t.Fatalf("Verb(%q) not ok", target)
				}
				got, _, err := Next(s, ev)
				want, allowed := exp[target]
				if !allowed {
					if !errors.Is(err, ErrInvalidTransition) {
						t.Errorf("Next(%q, %q) = %q, %v, want ErrInvalidTransition", s, ev, got, err)
					}
					return
				}
				if err != nil || got != want {
					t.Errorf("Next(%q, %q) = %q, %v, want %q", s, ev, got, err, want)
				}
			})
		}
	}
}

func TestInternalEventsEveryState(t *testing.T) {
	for _, s := range All() {
		for _, ev := range allInternal {
			t.Run(string(s)+"/"+string(ev), func(t *testing.T) {
				got, _, err := Next(s, ev)
				want, allowed := internalEvents[s][ev]
				if !allowed {
					if !errors.Is(err, ErrInvalidTransition) {
						t.Errorf("Next(%q, %q) = %q, %v, want ErrInvalidTransition", s, ev, got, err)
					}
					return
				}
				if err != nil || got != want {
					t.Errorf("Next(%q, %q) = %q, %v, want %q", s, ev, got, err, want)
				}
			})
		}
	}
}

func TestTableHasNoExtraEdges(t *testing.T) {
	n := 0
	for _, m := range userVerbs {
		seen := map[Event]bool{}
		for target := range m {
			ev, _, _ := Verb(target)
			if !seen[ev] {
				seen[ev] = true
				n++
			}
		}
	}
	for _, m := range internalEvents {
		n += len(m)
	}
	if got := len(Transitions()); got != n {
		t.Errorf("len(Transitions()) = %d, want %d (expectation tables)", got, n)
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		from       State
		ev         Event
		next, want State
	}{
		{Enroll, EventManage, Verifying, Manageable},
		{Verifying, EventDone, Manageable, NoState},
		{Verifying, EventFail, Enroll, NoState},
		{Manageable, EventProvide, Cleaning, Available},
		{Manageable, EventClean, Cleaning, Manageable},
		{Manageable, EventInspect, Inspecting, Manageable},
		{Inspecting, EventWait, InspectWait, Manageable},
		{InspectWait, EventFail, InspectFailed, Manageable},
		{Manageable, EventAdopt, Adopting, Active},
		{Available, EventDeploy, Deploying, Active},
		{Deploying, EventWait, DeployWait, Active},
		{Deploying, EventDone, Active, NoState},
		{DeployWait, EventFail, DeployFailed, Active},
		{Active, EventDelete, Deleting, Available},
		{Deleting, EventClean, Cleaning, Available},
		{Deleting, EventFail, Error, NoState},
		{Cleaning, EventDone, Available, NoState},
		{Active, EventRescue, Rescuing, Rescue},
		{Rescuing, EventDone, Rescue, NoState},
		{Rescue, EventUnrescue, Unrescuing, Active},
		{Active, EventService, Servicing, Active},
		{ServiceFailed, EventAbort, Active, NoState},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"/"+string(tt.ev), func(t *testing.T) {
			next, target, err := Next(tt.from, tt.ev)
			if err != nil || next != tt.next || target != tt.want {
				t.Errorf("Next(%q, %q) = %q, %q, %v, want %q, %q", tt.from, tt.ev, next, target, err, tt.next, tt.want)
			}
		})
	}
}

func TestNextTo(t *testing.T) {
	tests := []struct {
		name       string
		from       State
		ev         Event
		target     State
		next, want State
		err        error
	}{
		{"manual clean resumes", CleanWait, EventResume, Manageable, Cleaning, Manageable, nil},
		{"manual clean fails", Cleaning, EventFail, Manageable, CleanFailed, Manageable, nil},
		{"manual clean ends", Cleaning, EventManage, Manageable, Manageable, NoState, nil},
		{"no override", CleanWait, EventResume, NoState, Cleaning, Available, nil},
		{"unstable target", CleanWait, EventResume, Cleaning, NoState, NoState, ErrInvalidTarget},
		{"bad event", Active, EventResume, Manageable, NoState, NoState, ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, target, err := NextTo(tt.from, tt.ev, tt.target)
			if !errors.Is(err, tt.err) || next != tt.next || target != tt.want {
				t.Errorf("NextTo(%q, %q, %q) = %q, %q, %v, want %q, %q, %v", tt.from, tt.ev, tt.target, next, target, err, tt.next, tt.want, tt.err)
			}
		})
	}
}

func TestVerb(t *testing.T) {
	tests := []struct {
		target string
		ev     Event
		min    int
		ok     bool
	}{
		{"active", EventDeploy, 0, true},
		{"deploy", EventDeploy, 73, true},
		{"deleted", EventDelete, 0, true},
		{"undeploy", EventDelete, 73, true},
		{"rebuild", EventRebuild, 0, true},
		{"manage", EventManage, 4, true},
		{"provide", EventProvide, 4, true},
		{"inspect", EventInspect, 6, true},
		{"abort", EventAbort, 13, true},
		{"clean", EventClean, 15, true},
		{"adopt", EventAdopt, 17, true},
		{"rescue", EventRescue, 38, true},
		{"unrescue", EventUnrescue, 38, true},
		{"unhold", EventUnhold, 85, true},
		{"service", EventService, 87, true},
		{"done", "", 0, false},
		{"available", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			ev, min, ok := Verb(tt.target)
			if ev != tt.ev || min != tt.min || ok != tt.ok {
				t.Errorf("Verb(%q) = %q, %d, %t, want %q, %d, %t", tt.target, ev, min, ok, tt.ev, tt.min, tt.ok)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		target string
		state  State
		minor  int
		ev     Event
		err    error
	}{
		{"deploy old alias", "active", Available, 1, EventDeploy, nil},
		{"deploy verb too old", "deploy", Available, 72, "", ErrVersionTooLow},
		{"deploy verb", "deploy", Available, 73, EventDeploy, nil},
		{"version before state", "manage", Active, 3, "", ErrVersionTooLow},
		{"bad state", "manage", Active, 78, "", ErrInvalidTransition},
		{"unknown", "bogus", Active, 78, "", ErrUnknownVerb},
		{"abort inspect wait 1.40", "abort", InspectWait, 40, "", ErrVersionTooLow},
		{"abort inspect wait 1.41", "abort", InspectWait, 41, EventAbort, nil},
		{"abort clean wait 1.13", "abort", CleanWait, 13, EventAbort, nil},
		{"abort wait call-back 1.109", "abort", DeployWait, 109, "", ErrVersionTooLow},
		{"abort wait call-back 1.110", "abort", DeployWait, 110, EventAbort, nil},
		{"unhold 1.84", "unhold", DeployHold, 84, "", ErrVersionTooLow},
		{"service 1.87", "service", Active, 87, EventService, nil},
		{"rebuild error", "rebuild", Error, 1, EventRebuild, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Check(tt.target, tt.state, tt.minor)
			if ev != tt.ev || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Check(%q, %q, %d) = %q, %v, want %q, %v", tt.target, tt.state, tt.minor, ev, err, tt.ev, tt.err)
			}
		})
	}
}

func TestFailState(t *testing.T) {
	want := map[State]State{
		Deploying:   DeployFailed,
		Cleaning:    CleanFailed,
		Verifying:   Enroll,
		Inspecting:  InspectFailed,
		DeployWait:  DeployFailed,
		CleanWait:   CleanFailed,
		InspectWait: InspectFailed,
		Adopting:    AdoptFailed,
		Rescuing:    RescueFailed,
		RescueWait:  RescueFailed,
		Unrescuing:  UnrescueFailed,
		Deleting:    Error,
		Servicing:   ServiceFailed,
		ServiceWait: ServiceFailed,
	}
	for _, s := range All() {
		t.Run(string(s), func(t *testing.T) {
			got, ok := FailState(s)
			w, wok := want[s]
			if got != w || ok != wok {
				t.Errorf("FailState(%q) = %q, %t, want %q, %t", s, got, ok, w, wok)
			}
			if FailOnRestart(s) && (!ok || IsWait(s)) {
				t.Errorf("FailOnRestart(%q) true but FailState ok=%t IsWait=%t", s, ok, IsWait(s))
			}
		})
	}
}

func TestClassification(t *testing.T) {
	type row struct{ stable, unstable, failure, wait, restart bool }
	want := map[State]row{
		Enroll: {stable: true}, Manageable: {stable: true}, Available: {stable: true},
		Active: {stable: true}, Error: {stable: true}, Rescue: {stable: true},
		Verifying:      {unstable: true, restart: true},
		Deploying:      {unstable: true, restart: true},
		DeployWait:     {unstable: true, wait: true},
		DeployFailed:   {failure: true},
		DeployHold:     {},
		Cleaning:       {unstable: true, restart: true},
		CleanWait:      {unstable: true, wait: true},
		CleanFailed:    {failure: true},
		CleanHold:      {},
		Deleting:       {unstable: true, restart: true},
		Inspecting:     {unstable: true, restart: true},
		InspectWait:    {unstable: true, wait: true},
		InspectFailed:  {failure: true},
		Adopting:       {unstable: true, restart: true},
		AdoptFailed:    {failure: true},
		Rescuing:       {unstable: true, restart: true},
		RescueWait:     {unstable: true, wait: true},
		RescueFailed:   {failure: true},
		Unrescuing:     {unstable: true, restart: true},
		UnrescueFailed: {failure: true},
		Servicing:      {unstable: true, restart: true},
		ServiceWait:    {unstable: true, wait: true},
		ServiceFailed:  {failure: true},
		ServiceHold:    {},
	}
	for _, s := range All() {
		t.Run(string(s), func(t *testing.T) {
			got := row{IsStable(s), IsUnstable(s), IsFailure(s), IsWait(s), FailOnRestart(s)}
			if got != want[s] {
				t.Errorf("classification of %q = %+v, want %+v", s, got, want[s])
			}
			if IsStable(s) != (DefaultTarget(s) == NoState) {
				t.Errorf("DefaultTarget(%q) = %q, stable %t", s, DefaultTarget(s), IsStable(s))
			}
		})
	}
}

func TestStateSets(t *testing.T) {
	lookup := map[State]bool{Deploying: true, DeployWait: true, Cleaning: true, CleanWait: true,
		Inspecting: true, InspectWait: true, Rescuing: true, RescueWait: true, ServiceWait: true}
	fast := map[State]bool{Enroll: true, Manageable: true, Available: true, Servicing: true, ServiceHold: true}
	update := map[State]bool{DeployFailed: true, Inspecting: true, InspectFailed: true, InspectWait: true,
		CleanFailed: true, Error: true, Verifying: true, AdoptFailed: true, RescueFailed: true,
		UnrescueFailed: true, ServiceHold: true, ServiceFailed: true}
	del := map[State]bool{Manageable: true, Enroll: true, AdoptFailed: true}
	for _, s := range All() {
		t.Run(string(s), func(t *testing.T) {
			if got := LookupAllowed(s, false); got != lookup[s] {
				t.Errorf("LookupAllowed(%q, false) = %t, want %t", s, got, lookup[s])
			}
			if got, w := LookupAllowed(s, true), lookup[s] || fast[s]; got != w {
				t.Errorf("LookupAllowed(%q, true) = %t, want %t", s, got, w)
			}
			if got := UpdateAllowed(s); got != update[s] {
				t.Errorf("UpdateAllowed(%q) = %t, want %t", s, got, update[s])
			}
			if got := DeleteAllowed(s, false); got != del[s] {
				t.Errorf("DeleteAllowed(%q, false) = %t, want %t", s, got, del[s])
			}
			if got, w := DeleteAllowed(s, true), del[s] || s == Available; got != w {
				t.Errorf("DeleteAllowed(%q, true) = %t, want %t", s, got, w)
			}
		})
	}
}

func TestForVersion(t *testing.T) {
	tests := []struct {
		s     State
		minor int
		want  State
	}{
		{Available, 1, NoState},
		{Available, 2, Available},
		{InspectWait, 38, Inspecting},
		{InspectWait, 39, InspectWait},
		{Active, 1, Active},
		{Inspecting, 1, Inspecting},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			if got := ForVersion(tt.s, tt.minor); got != tt.want {
				t.Errorf("ForVersion(%q, %d) = %q, want %q", tt.s, tt.minor, got, tt.want)
			}
		})
	}
	if got := InitialState(10); got != Available {
		t.Errorf("InitialState(10) = %q, want available", got)
	}
	if got := InitialState(11); got != Enroll {
		t.Errorf("InitialState(11) = %q, want enroll", got)
	}
}

func TestKnownState(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"active", true}, {"wait call-back", true}, {"service hold", true},
		{"deleted", false}, {"deploy complete", false}, {"rebuild", false},
		{"", false}, {"ACTIVE", false},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if got := KnownState(tt.s); got != tt.want {
				t.Errorf("KnownState(%q) = %t, want %t", tt.s, got, tt.want)
			}
			_, err := Parse(tt.s)
			if (err == nil) != tt.want || (err != nil && !errors.Is(err, ErrUnknownState)) {
				t.Errorf("Parse(%q) error = %v", tt.s, err)
			}
		})
	}
}

func TestTableConsistency(t *testing.T) {
	seen := map[[2]string]bool{}
	for _, tr := range Transitions() {
		k := [2]string{string(tr.From), string(tr.Event)}
		if seen[k] {
			t.Errorf("duplicate edge %v", k)
		}
		seen[k] = true
		if !KnownState(string(tr.From)) || !KnownState(string(tr.To)) {
			t.Errorf("edge %+v names an unknown state", tr)
		}
		if tr.Target != NoState && !IsStable(tr.Target) {
			t.Errorf("edge %+v targets a transient state", tr)
		}
	}
	for _, s := range All() {
		if d := DefaultTarget(s); d != NoState && !IsStable(d) {
			t.Errorf("DefaultTarget(%q) = %q, not a stable state", s, d)
		}
	}
}

func TestEvents(t *testing.T) {
	got := Events(Manageable)
	want := []Event{EventProvide, EventClean, EventInspect, EventAdopt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Events(manageable) mismatch (-want +got):\n%s", diff)
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown()
	for _, line := range []string{
		"| wait call-back | false | active | deploy failed |",
		"| manageable | clean | cleaning | manageable |",
		"| deploying | done | active | – |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("Markdown() lacks %q", line)
		}
	}
}
