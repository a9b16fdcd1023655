package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// notOnPath maps the programs tests name that are not a file on PATH to
// the Debian package that provides them.
var notOnPath = map[string]string{
	"gst-rtsp-server": "gir1.2-gst-rtsp-server-1.0",
}

// The programs the tests skip without: NeedTool and SkipMissing calls
// (and the packages' own wrappers) with a literal name, and the netfault
// lab's list.
var (
	needRE     = regexp.MustCompile(`(?:NeedTool|needTool|needProgram|SkipMissing)\(\w+, "([^"]+)"`)
	netfaultRE = regexp.MustCompile(`\{"([a-z]+)", "[a-z0-9.+-]+"\}`)
)

// testPrograms returns every program named by the tests under root.
func testPrograms(t *testing.T, root string) map[string]bool {
	t.Helper()
	progs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range needRE.FindAllSubmatch(b, -1) {
			progs[string(m[1])] = true
		}
		if strings.HasSuffix(p, filepath.Join("test", "netfault", "main_test.go")) {
			for _, m := range netfaultRE.FindAllSubmatch(b, -1) {
				progs[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(progs, "go") // the toolchain running the tests
	return progs
}

// testDeps is the Makefile's TEST_DEPS, the packages make test-deps
// installs.
func testDeps(t *testing.T, makefile string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^TEST_DEPS :=(.*)$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("the Makefile has no TEST_DEPS")
	}
	deps := map[string]bool{}
	for _, f := range strings.Fields(m[1]) {
		deps[f] = true
	}
	return deps
}

// debPackage returns the installed package that holds path, trying the
// path through its symlinks and without the /usr of a merged /usr.
func debPackage(path string) string {
	cands := []string{path}
	if r, err := filepath.EvalSymlinks(path); err == nil {
		cands = append(cands, r)
	}
	for _, c := range append([]string(nil), cands...) {
		if s, ok := strings.CutPrefix(c, "/usr"); ok {
			cands = append(cands, s)
		}
	}
	for _, c := range cands {
		out, err := exec.Command("dpkg", "-S", c).Output()
		if err != nil {
			continue
		}
		// "diversion by dash from: /usr/bin/sh" lines name no package.
		for _, l := range strings.Split(string(out), "\n") {
			if pkg, _, ok := strings.Cut(l, ": "); ok && !strings.Contains(pkg, " ") {
				return pkg
			}
		}
	}
	return ""
}

// After make test-deps nothing is skipped for a missing program: every
// program a test can skip without comes from a package that make test-deps
// installs, or from one that every Debian system has.
func TestTestDepsCoverEveryProgram(t *testing.T) {
	testutil.NeedTool(t, "dpkg")
	root := filepath.Join("..", "..", "..")
	progs := testPrograms(t, root)
	if !progs["ffprobe"] || !progs["podman"] || !progs["nft"] {
		t.Fatalf("the scan found too little: %v", progs)
	}
	deps := testDeps(t, filepath.Join(root, "Makefile"))
	for prog := range progs {
		pkg, ok := notOnPath[prog]
		if !ok {
			path, err := exec.LookPath(prog)
			if err != nil {
				t.Logf("%s is not installed here, so its package is not checked", prog)
				if os.Getenv("CI") == "true" {
					t.Errorf("%s is missing after make test-deps", prog)
				}
				continue
			}
			if pkg = debPackage(path); pkg == "" {
				t.Errorf("no Debian package holds %s (%s)", prog, path)
				continue
			}
		}
		if deps[pkg] {
			continue
		}
		out, _ := exec.Command("dpkg-query", "-W", "-f", "${Essential} ${Priority}", pkg).Output()
		if f := strings.Fields(string(out)); len(f) == 2 && (f[0] == "yes" || f[1] == "required") {
			continue
		}
		t.Errorf("%s comes from the package %s, which make test-deps (the Makefile's TEST_DEPS) does not install", prog, pkg)
	}
}
