package device

import (
	"fmt"
	"slices"
	"strings"
)

// StateTableMarkdown returns the camera state machine's rules as a
// Markdown table, row by row as the supervisor applies them. go generate
// writes it into docs/ARCHITECTURE.md; a test keeps that copy current.
func StateTableMarkdown() string {
	var b strings.Builder
	b.WriteString("For each event, the first row whose state and guard match applies: its\n" +
		"steps run in order; \"then\" hands on to the next event in the same instant.\n" +
		"A row without a guard is the otherwise of the rows above it.\n\n")
	b.WriteString("| # | state | event | guard | next | persist | steps | why |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i, r := range machineRules {
		next, persisted, steps := ruleColumns(r)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n",
			i+1, statesColumn(r.in), r.on, guardColumn(i), next, persisted, steps, orDash(r.why))
	}
	return b.String()
}

func statesColumn(in []State) string {
	switch {
	case in == nil:
		return "any"
	case slices.Equal(in, live):
		return "any but STOPPED"
	}
	names := make([]string, len(in))
	for i, s := range in {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// guardColumn names row i's guard; a row without one is "otherwise" when
// a guarded row above it can take the same event in one of its states.
func guardColumn(i int) string {
	r := machineRules[i]
	if r.when.name != "" {
		return r.when.name
	}
	for _, p := range machineRules[:i] {
		if p.on == r.on && p.when.name != "" && overlap(p.in, r.in) {
			return "otherwise"
		}
	}
	return "—"
}

func overlap(a, b []State) bool {
	if a == nil || b == nil {
		return true
	}
	for _, s := range a {
		if slices.Contains(b, s) {
			return true
		}
	}
	return false
}

// ruleColumns splits a row's steps into the state it shows next, the
// status it persists and the rest.
func ruleColumns(r rule) (next, persisted, steps string) {
	next, persisted = "same", "—"
	var rest []string
	for _, s := range r.do {
		switch {
		case s.to != nil:
			next = s.to.String()
		case s.persist != "":
			persisted = string(s.persist)
		default:
			rest = append(rest, s.name)
		}
	}
	if r.then != evNone {
		rest = append(rest, "then *"+r.then.String()+"*")
	}
	if len(rest) == 0 {
		return next, persisted, "nothing"
	}
	return next, persisted, strings.Join(rest, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
