package statemachine

import (
	"fmt"
	"strings"
)

// Markdown renders the machine as a Markdown document: one table of states
// (stable or not, default target, where a failure goes) and one of
// transitions. It is meant for operator documentation and for reviewing the
// tables by eye.
func Markdown() string {
	var b strings.Builder
	b.WriteString("## Provision states\n\n")
	b.WriteString("| State | Stable | Default target | On failure |\n|---|---|---|---|\n")
	for _, s := range All() {
		fail, _ := FailState(s)
		fmt.Fprintf(&b, "| %s | %t | %s | %s |\n", s, IsStable(s), dash(DefaultTarget(s)), dash(fail))
	}
	b.WriteString("\n## Transitions\n\n")
	b.WriteString("| From | Event | To | Target |\n|---|---|---|---|\n")
	for _, t := range transitions {
		_, target, _ := Next(t.From, t.Event)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.From, t.Event, t.To, dash(target))
	}
	return b.String()
}

func dash(s State) string {
	if s == NoState {
		return "–"
	}
	return string(s)
}
