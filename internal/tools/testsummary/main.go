// Command testsummary runs "go test -json ARGS…" and prints what plain
// "go test" prints (each package's ok/FAIL line, and the whole output of a
// test that failed), then, at the end, the tests that were skipped: those
// that lack a program grouped by the program, with the command that
// installs them all, and the others by reason. It exits with go test's
// status, so that make test still fails when a test fails.
//
//	go run ./internal/tools/testsummary -race -count=1 ./...
//
// A skip for a missing program is one whose message begins "missing
// program NAME:" (internal/testutil.SkipMissing).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail
}

// skip is one skipped test.
type skip struct {
	pkg, test, reason string
}

// missingRE finds a missing program in a skip message; it matches
// testutil.MissingPrefix.
var missingRE = regexp.MustCompile(`missing program (\S+?): `)

// skipLineRE is the line of a test's output that t.Skip wrote: indented,
// "file_test.go:NN: message".
var skipLineRE = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

// summary reads go test -json events from r, writes the usual output to w
// as it goes, and returns the skipped tests.
func summary(r io.Reader, w io.Writer) ([]skip, error) {
	out := map[string][]string{} // package/test → its output so far
	var skips []skip
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (go test's own messages): pass it on.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "output":
			// Package-level lines: "ok  pkg 1.2s", "FAIL", a panic, a
			// TestMain's output. The per-test lines go test -json adds in
			// verbose form are dropped, as plain go test does.
			if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS\n") {
				fmt.Fprint(w, e.Output)
			}
		case e.Action == "output":
			out[key] = append(out[key], e.Output)
		case e.Action == "fail" && e.Test != "":
			for _, l := range out[key] {
				if !strings.HasPrefix(l, "=== ") {
					fmt.Fprint(w, l)
				}
			}
			delete(out, key)
		case e.Action == "skip" && e.Test != "":
			skips = append(skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(out[key])})
			delete(out, key)
		case e.Action == "pass":
			delete(out, key)
		}
	}
	return skips, sc.Err()
}

// skipReason is the message t.Skip printed, from a test's output.
func skipReason(lines []string) string {
	var reason string
	for _, l := range lines {
		if m := skipLineRE.FindStringSubmatch(strings.TrimRight(l, "\n")); m != nil {
			reason = m[1]
		}
	}
	if reason == "" {
		return "no reason given"
	}
	return reason
}

// writeSkips prints the summary of skipped tests.
func writeSkips(w io.Writer, skips []skip) {
	if len(skips) == 0 {
		fmt.Fprintln(w, "\nNo test was skipped.")
		return
	}
	byProg := map[string][]string{}
	byReason := map[string][]string{}
	for _, s := range skips {
		name := strings.TrimPrefix(s.pkg, "github.com/camd/camd/") + "." + s.test
		if m := missingRE.FindStringSubmatch(s.reason); m != nil {
			byProg[m[1]] = append(byProg[m[1]], name)
			continue
		}
		byReason[s.reason] = append(byReason[s.reason], name)
	}
	fmt.Fprintf(w, "\n%d tests skipped.\n", len(skips))
	if len(byReason) > 0 {
		fmt.Fprintln(w, "Skipped by design (slow, another OS, needs a setting or root):")
		for _, r := range sortedKeys(byReason) {
			fmt.Fprintf(w, "  %s: %s\n", r, strings.Join(byReason[r], ", "))
		}
	}
	if len(byProg) > 0 {
		n := 0
		for _, v := range byProg {
			n += len(v)
		}
		fmt.Fprintf(w, "Skipped for a missing program (%d tests):\n", n)
		for _, p := range sortedKeys(byProg) {
			fmt.Fprintf(w, "  %-16s %d: %s\n", p, len(byProg[p]), strings.Join(byProg[p], ", "))
		}
		fmt.Fprintln(w, "Install them all with: sudo make test-deps (Debian/Ubuntu; the same as CI)")
	}
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func main() {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	skips, rerr := summary(stdout, os.Stdout)
	_, _ = io.Copy(io.Discard, stdout) // after a read error, so that go test can end
	werr := cmd.Wait()
	writeSkips(os.Stdout, skips)
	if rerr != nil {
		fmt.Fprintln(os.Stderr, "testsummary: reading go test's output:", rerr)
		os.Exit(1)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee):
		os.Exit(ee.ExitCode())
	case werr != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", werr)
		os.Exit(1)
	}
}
