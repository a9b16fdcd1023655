package internal_test

// The import direction of camd's packages. Every import points down:
//
//	cmd/camd
//	internal/daemon
//	internal/api, internal/observe, internal/notify/...
//	device
//	store, stream/relay
//	stream
//	leaves (internal/events, internal/printable, stream/internal/rtsp, ...)
//
// A package that imports upwards (device importing internal/api, stream
// importing device) ties a lower layer to what uses it, so that neither
// can change or be tested alone. The rules cover what is compiled into
// camd (go list's Imports); tests may reach across (internal/web's tests
// start a daemon).

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/camd/camd/"

// allowed lists, for every package of the module that is not a test
// helper, the module's packages it may import directly. A package missing
// here fails the test: a new package takes its place in the layering
// consciously.
var allowed = map[string][]string{
	// Leaves: no camd imports.
	"internal/authguard":   nil,
	"internal/events":      nil,
	"internal/printable":   nil,
	"internal/procfd":      nil,
	"internal/sdnotify":    nil,
	"internal/web":         nil,
	"packaging":            nil,
	"stream/internal/rtsp": nil,
	"stream/sim":           nil,

	"store":                   {"internal/events"},
	"stream":                  {"stream/internal/rtsp"},
	"stream/relay":            {"stream", "internal/authguard"},
	"internal/notify":         {"internal/events"},
	"internal/notify/mqtt":    {"internal/events", "internal/notify"},
	"internal/notify/webhook": {"internal/events", "internal/notify"},

	"device": {"store", "stream", "internal/events", "internal/printable"},

	"internal/observe": {"device", "internal/procfd"},
	"internal/api":     {"device", "stream", "internal/events", "internal/authguard", "internal/procfd"},

	"internal/daemon": {"device", "store", "stream/relay", "internal/api", "internal/events",
		"internal/notify", "internal/notify/mqtt", "internal/notify/webhook",
		"internal/observe", "internal/sdnotify", "internal/web"},

	// The CLI runs the daemon (camd run, camd demo) and talks to it through
	// the API client. It needs device for what those two expose in device
	// types: daemon.Options.OnStateChange's device.State and
	// api.Client.AddCamera's device.Spec.
	"cmd/camd": {"internal/daemon", "internal/api", "device", "internal/events",
		"internal/printable", "packaging", "stream/relay", "stream/sim"},

	// Build tools, outside camd.
	"packaging/cmd/mkimage":      nil,
	"internal/tools/testsummary": nil,
	"device/internal/gentable":   {"device"}, // go generate ./device
	"internal":                   nil,        // this test
}

// testHelper says whether p is test or bench code: it may import any camd
// package but cmd, and nothing in allowed may import it.
func testHelper(p string) bool {
	return p == "internal/testutil" || strings.HasPrefix(p, "internal/testutil/") ||
		strings.HasPrefix(p, "test/") || strings.HasPrefix(p, "bench/")
}

// forbidden are the edges the layering exists to prevent, checked on the
// transitive imports so that no detour through a third package makes one.
// allowed already excludes them; they are spelled out so that widening
// allowed cannot bring one back unnoticed.
var forbidden = []struct{ from, to, why string }{
	{"store", "stream", "the store keeps records, it knows no camera protocol"},
	{"store", "device", "device persists through store, not the reverse"},
	{"stream", "device", "stream reads one camera; device supervises streams"},
	{"stream", "store", "stream reads cameras; what is kept is device's business"},
	{"stream", "internal/api", "stream is below the API"},
	{"stream", "internal/daemon", "stream is below the daemon"},
	{"device", "internal/api", "device is what the API serves"},
	{"device", "internal/daemon", "the daemon assembles device, not the reverse"},
	{"device", "internal/web", "device is what the status page shows"},
	{"device", "internal/observe", "observe watches device"},
	{"device", "stream/relay", "the relay is fed through device.Tap, set by the daemon"},
	{"internal/api", "internal/daemon", "the daemon serves the API, not the reverse"},
	{"internal/api", "internal/web", "the daemon mounts the page next to the API"},
	{"internal/api", "stream/relay", "the relay's stats reach the API as values"},
	{"internal/observe", "internal/api", "observe is below the API"},
	{"internal/web", "internal/api", "the page talks to the API over HTTP"},
	{"internal/notify", "internal/daemon", "notifiers are assembled by the daemon"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Error      *struct{ Err string }
}

// modulePackages returns every package of the module with its imports of
// the module's packages, paths relative to the module.
func modulePackages(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	// -e: an import cycle (what an upward import usually makes) is
	// reported with the edge that closes it instead of ending go list.
	cmd := exec.Command(goBin, "list", "-e", "-json=ImportPath,Imports,Error", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		from := strings.TrimPrefix(p.ImportPath, module)
		var to []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				to = append(to, strings.TrimPrefix(imp, module))
			}
		}
		pkgs[from] = to
	}
	if len(pkgs) < len(allowed) {
		t.Fatalf("go list found %d packages, fewer than the %d in the table", len(pkgs), len(allowed))
	}
	return pkgs
}

// violations returns what is wrong with graph, one line each.
func violations(graph map[string][]string) []string {
	var bad []string
	for from, imps := range graph {
		for _, to := range imps {
			if to == "cmd" || strings.HasPrefix(to, "cmd/") || strings.Contains(to, "/cmd/") {
				bad = append(bad, from+" imports "+to+": nothing imports a command")
			}
		}
		if testHelper(from) {
			continue
		}
		ok, known := allowed[from]
		if !known {
			bad = append(bad, from+" is not in the layering table (internal/deps_test.go)")
			continue
		}
		for _, to := range imps {
			if !slices.Contains(ok, to) {
				bad = append(bad, from+" imports "+to+", which the layering does not allow")
			}
		}
	}
	for _, f := range forbidden {
		for from := range graph {
			if from != f.from && !strings.HasPrefix(from, f.from+"/") {
				continue
			}
			if path := importPath(graph, from, f.to); path != nil {
				bad = append(bad, strings.Join(path, " -> ")+": "+f.why)
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// importPath returns a chain of imports from from to to (or a package
// under it), or nil.
func importPath(graph map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range graph[p] {
			if _, seen := prev[q]; seen {
				continue
			}
			prev[q] = p
			if q == to || strings.HasPrefix(q, to+"/") {
				path := []string{q}
				for s := p; s != ""; s = prev[s] {
					path = append([]string{s}, path...)
				}
				return path
			}
			queue = append(queue, q)
		}
	}
	return nil
}

func TestImportDirection(t *testing.T) {
	graph := modulePackages(t)
	for _, v := range violations(graph) {
		t.Error(v)
	}
	for p := range allowed {
		if _, ok := graph[p]; !ok {
			t.Errorf("the layering table names %s, which go list does not find", p)
		}
	}
}

// The checks catch an upward import, directly and through a detour, and
// a package left out of the table.
func TestImportDirectionCatches(t *testing.T) {
	clean := map[string][]string{}
	for p, imps := range allowed {
		clean[p] = slices.Clone(imps)
	}
	if v := violations(clean); len(v) > 0 {
		t.Fatalf("the table breaks its own rules: %v", v)
	}
	cases := []struct {
		name     string
		from, to string
		want     string
	}{
		{"direct", "device", "internal/api", "device imports internal/api"},
		{"through a detour", "store", "internal/observe", "store -> internal/observe -> device"},
		{"a command", "internal/daemon", "cmd/camd", "nothing imports a command"},
		{"a new package", "internal/newthing", "", "internal/newthing is not in the layering table"},
	}
	for _, tc := range cases {
		g := map[string][]string{}
		for p, imps := range clean {
			g[p] = slices.Clone(imps)
		}
		if tc.to != "" {
			g[tc.from] = append(g[tc.from], tc.to)
		} else {
			g[tc.from] = nil
		}
		v := violations(g)
		if !slices.ContainsFunc(v, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("%s: %s -> %s not reported as %q; got %v", tc.name, tc.from, tc.to, tc.want, v)
		}
	}
}
