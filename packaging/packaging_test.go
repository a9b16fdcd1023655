package packaging

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/camd/camd/internal/testutil"
)

// unit parses a systemd unit: section -> key -> values (in order).
func unit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	u := map[string]map[string][]string{}
	var sec string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			if u[sec] == nil {
				u[sec] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("unit line %d: %q is not KEY=VALUE in a section", n+1, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	u := unit(t, SystemdUnit)
	want := map[string]map[string]string{
		"Unit": {
			"Wants":                 "network-online.target",
			"After":                 "network-online.target",
			"StartLimitIntervalSec": "0",
		},
		"Service": {
			"Type":                    "notify",
			"NotifyAccess":            "main",
			"ExecStart":               "/usr/bin/camd run --config /etc/camd/camd.yaml --data-dir /var/lib/camd",
			"Restart":                 "always",
			"RestartSec":              "2",
			"WatchdogSec":             "30",
			"TimeoutStopSec":          "20",
			"KillMode":                "mixed",
			"LimitNOFILE":             "65536",
			"User":                    "camd",
			"Group":                   "camd",
			"StateDirectory":          "camd",
			"StateDirectoryMode":      "0700",
			"ConfigurationDirectory":  "camd",
			"NoNewPrivileges":         "yes",
			"ProtectSystem":           "strict",
			"ProtectHome":             "yes",
			"PrivateTmp":              "yes",
			"PrivateDevices":          "yes",
			"ProtectKernelTunables":   "yes",
			"ProtectKernelModules":    "yes",
			"ProtectKernelLogs":       "yes",
			"ProtectControlGroups":    "yes",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
			"RestrictNamespaces":      "yes",
			"LockPersonality":         "yes",
			"MemoryDenyWriteExecute":  "yes",
			"SystemCallArchitectures": "native",
			"CapabilityBoundingSet":   "",
			"UMask":                   "0077",
			"PrivateUsers":            "yes",
			"PrivateIPC":              "yes",
			"ProcSubset":              "pid",
			"ProtectProc":             "invisible",
			"MemoryMax":               "1G",
			"TasksMax":                "512",
		},
		"Install": {"WantedBy": "multi-user.target"},
	}
	for sec, kv := range want {
		for k, v := range kv {
			got := u[sec][k]
			if len(got) != 1 || got[0] != v {
				t.Errorf("[%s] %s = %q, want exactly %q", sec, k, got, v)
			}
		}
	}
	// No start-rate limit anywhere, no stray burst settings.
	for _, k := range []string{"StartLimitBurst", "StartLimitInterval"} {
		if _, ok := u["Unit"][k]; ok {
			t.Errorf("[Unit] %s is set", k)
		}
		if _, ok := u["Service"][k]; ok {
			t.Errorf("[Service] %s is set", k)
		}
	}
	// Nothing may hide the state dir or keep camd off the network.
	for _, k := range []string{"PrivateNetwork", "IPAddressDeny", "ReadOnlyPaths", "InaccessiblePaths", "DynamicUser"} {
		if _, ok := u["Service"][k]; ok {
			t.Errorf("[Service] %s is set; camd needs the network and its state dir", k)
		}
	}
	if strings.Contains(SystemdUnit, "{{") {
		t.Error("the unit contains {{, which kardianos/service would take for a template action")
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the unit (with
// ExecStart pointed at an existing executable, since verify checks it).
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if runtime.GOOS != "linux" {
			t.Skip("systemd is Linux only")
		}
		testutil.SkipMissing(t, "systemd-analyze", "apt-get install systemd")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "camd")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text, err := SystemdUnitFor(exe, RunArgs(SystemdConfigPath, SystemdDataDir))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SystemdUnitName)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdUnitFor(t *testing.T) {
	text, err := SystemdUnitFor("/opt/my cams/camd", []string{"run", "--config", "/etc/camd/100%.yaml", "--data-dir", `/var/lib/$x"y\z`})
	if err != nil {
		t.Fatal(err)
	}
	u := unit(t, text)
	want := `"/opt/my cams/camd" run --config /etc/camd/100%%.yaml --data-dir "/var/lib/$$x\"y\\z"`
	if got := u["Service"]["ExecStart"]; len(got) != 1 || got[0] != want {
		t.Errorf("ExecStart = %q, want %q", got, want)
	}
	// Everything else is the packaged unit, line for line.
	a, b := strings.Split(SystemdUnit, "\n"), strings.Split(text, "\n")
	if len(a) != len(b) {
		t.Fatalf("line count %d != %d", len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] && !strings.HasPrefix(a[i], "ExecStart=") {
			t.Errorf("line %d: %q != %q", i+1, b[i], a[i])
		}
	}
	if got := RunArgs("", "/d"); strings.Join(got, " ") != "run --data-dir /d" {
		t.Errorf("RunArgs without config = %q", got)
	}
}

// plist decodes an XML property list into Go values: map[string]any for
// dict, []any for array, string, int64 (integer), bool.
func plist(t *testing.T, text string) map[string]any {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(text))
	d.Strict = true
	var next func(start xml.StartElement) (any, error)
	next = func(start xml.StartElement) (any, error) {
		switch start.Name.Local {
		case "dict":
			m := map[string]any{}
			var key *string
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				switch tk := tok.(type) {
				case xml.StartElement:
					if tk.Name.Local == "key" {
						var k string
						if err := d.DecodeElement(&k, &tk); err != nil {
							return nil, err
						}
						if _, dup := m[k]; dup {
							return nil, fmt.Errorf("duplicate key %q", k)
						}
						key = &k
						continue
					}
					if key == nil {
						return nil, fmt.Errorf("<%s> without a <key> in a dict", tk.Name.Local)
					}
					v, err := next(tk)
					if err != nil {
						return nil, err
					}
					m[*key] = v
					key = nil
				case xml.EndElement:
					if key != nil {
						return nil, fmt.Errorf("key %q without a value", *key)
					}
					return m, nil
				}
			}
		case "array":
			var a []any
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				switch tk := tok.(type) {
				case xml.StartElement:
					v, err := next(tk)
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				case xml.EndElement:
					return a, nil
				}
			}
		case "string":
			var s string
			err := d.DecodeElement(&s, &start)
			return s, err
		case "integer":
			var n int64
			err := d.DecodeElement(&n, &start)
			return n, err
		case "true", "false":
			var s string
			if err := d.DecodeElement(&s, &start); err != nil {
				return nil, err
			}
			return start.Name.Local == "true", nil
		}
		return nil, fmt.Errorf("unexpected <%s>", start.Name.Local)
	}
	var root map[string]any
	sawPlist := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plist is not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local == "plist" {
			sawPlist = true
			continue
		}
		v, err := next(se)
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		m, ok := v.(map[string]any)
		if !ok || root != nil {
			t.Fatalf("plist: the top level must be one <dict>")
		}
		root = m
	}
	if !sawPlist || root == nil {
		t.Fatal("plist: no <plist><dict>")
	}
	return root
}

func TestLaunchdPlist(t *testing.T) {
	p := plist(t, LaunchdPlist)
	for k, want := range map[string]any{
		"Label":             LaunchdLabel,
		"RunAtLoad":         true,
		"KeepAlive":         true,
		"ThrottleInterval":  int64(5),
		"StandardOutPath":   LaunchdLogDir + "/camd.log",
		"StandardErrorPath": LaunchdLogDir + "/camd.log",
		// A dedicated user, not root; its files are its own.
		"UserName":  LaunchdUser,
		"GroupName": LaunchdUser,
		"Umask":     int64(0o077),
	} {
		if p[k] != want {
			t.Errorf("%s = %#v, want %#v", k, p[k], want)
		}
	}
	for _, k := range []string{"SoftResourceLimits", "HardResourceLimits"} {
		m, _ := p[k].(map[string]any)
		if m["NumberOfFiles"] != int64(65536) {
			t.Errorf("%s.NumberOfFiles = %#v, want 65536", k, m["NumberOfFiles"])
		}
	}
	want := []any{"/usr/local/bin/camd", "run", "--config", LaunchdConfigPath, "--data-dir", LaunchdDataDir}
	if got := fmt.Sprint(p["ProgramArguments"]); got != fmt.Sprint(want) {
		t.Errorf("ProgramArguments = %s, want %s", got, want)
	}
	if strings.Contains(LaunchdPlist, "{{") {
		t.Error("the plist contains {{, which kardianos/service would take for a template action")
	}
}

func TestLaunchdPlistFor(t *testing.T) {
	args := []string{"run", "--config", "/Users/a&b/<camd>.yaml", "--data-dir", "/d"}
	text, err := LaunchdPlistFor("/opt/camd bin/camd", args)
	if err != nil {
		t.Fatal(err)
	}
	p := plist(t, text)
	want := append([]any{"/opt/camd bin/camd"}, func() []any {
		var a []any
		for _, s := range args {
			a = append(a, s)
		}
		return a
	}()...)
	if got := fmt.Sprint(p["ProgramArguments"]); got != fmt.Sprint(want) {
		t.Errorf("ProgramArguments = %s, want %s", got, want)
	}
	if p["RunAtLoad"] != true || p["KeepAlive"] != true || p["Label"] != LaunchdLabel || p["UserName"] != LaunchdUser || p["GroupName"] != LaunchdUser {
		t.Errorf("other keys changed: %v", p)
	}
}

func TestTemplateLiteral(t *testing.T) {
	if got := TemplateLiteral("a {{b}} c"); got != `a {{"{{"}}b}} c` {
		t.Errorf("TemplateLiteral = %q", got)
	}
}

// TestScripts checks that every shell script parses (sh -n) and starts
// with a POSIX sh interpreter line, except the e2e test, which is bash.
func TestScripts(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testutil.SkipMissing(t, "sh", "a POSIX shell")
	}
	files, _ := filepath.Glob("scripts/*.sh")
	more, _ := filepath.Glob("*.sh")
	files = append(files, more...)
	if len(files) < 7 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		shell := sh
		switch first {
		case "#!/bin/sh":
		case "#!/usr/bin/env bash":
			shell = "bash"
		default:
			t.Errorf("%s: interpreter line %q", f, first)
		}
		if out, err := exec.Command(shell, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", shell, f, err, out)
		}
		if st, err := os.Stat(f); err == nil && st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", f)
		}
	}
}

// TestPackageScriptsUseNoBashisms runs the package scripts with dash when
// there is one (Debian's /bin/sh), which rejects what POSIX sh lacks.
func TestPackageScriptsUseNoBashisms(t *testing.T) {
	dash, err := exec.LookPath("dash")
	if err != nil {
		testutil.SkipMissing(t, "dash", "apt-get install dash")
	}
	files, _ := filepath.Glob("scripts/*.sh")
	for _, f := range files {
		if out, err := exec.Command(dash, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("dash -n %s: %v\n%s", f, err, out)
		}
	}
}

// The _camd user the plist runs camd as is the one macos-user.sh creates
// (with dscl, hidden, with no shell), with the dirs the plist and "camd
// install" use owned by it; the .pkg's preinstall runs the script, which
// build-pkg.sh ships next to it.
func TestMacOSUser(t *testing.T) {
	s := MacOSUserScript
	for _, want := range []string{
		"name=" + LaunchdUser + "\n",
		"data=\"" + LaunchdDataDir + "\"\n",
		"logs=" + LaunchdLogDir + "\n",
		`dscl . -create "/Users/$name" UniqueID "$id"`,
		`dscl . -create "/Groups/$name" PrimaryGroupID "$id"`,
		`dscl . -create "/Users/$name" UserShell /usr/bin/false`,
		`dscl . -create "/Users/$name" IsHidden 1`,
		`chown -R "$name:$name" "$data" "$logs"`,
		`chmod 0700 "$data"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("macos-user.sh does not contain %q", want)
		}
	}
	pre, err := os.ReadFile(filepath.Join("scripts", "macos-preinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pre), `sh "$(dirname "$0")/macos-user.sh" || exit 1`) {
		t.Error("macos-preinstall.sh does not run macos-user.sh")
	}
	build, err := os.ReadFile("build-pkg.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(build), `packaging/scripts/macos-user.sh "$scripts/macos-user.sh"`) {
		t.Error("build-pkg.sh does not ship macos-user.sh with the package scripts")
	}
	post, err := os.ReadFile(filepath.Join("scripts", "macos-postinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(post), `chgrp _camd "$conf"`) || !strings.Contains(string(post), `chmod g+r,o-rwx "$conf"`) {
		t.Error("macos-postinstall.sh does not make the config root:_camd, unreadable by others")
	}
}

// The packaged config is 0640 in the .deb and .rpm (postinstall gives it
// to the camd group, which does not exist yet when the files are
// unpacked; make e2e-systemd checks the installed result).
func TestPackagedConfigMode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "nfpm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Contents []struct {
			Dst      string `yaml:"dst"`
			FileInfo struct {
				Mode os.FileMode `yaml:"mode"`
			} `yaml:"file_info"`
		} `yaml:"contents"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cfg.Contents {
		if c.Dst == SystemdConfigPath {
			found = true
			if c.FileInfo.Mode != 0o640 {
				t.Errorf("nfpm.yaml: %s has mode %04o, want 0640", c.Dst, c.FileInfo.Mode)
			}
		}
	}
	if !found {
		t.Fatalf("nfpm.yaml installs no %s", SystemdConfigPath)
	}
	post, err := os.ReadFile(filepath.Join("scripts", "postinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(post), `chgrp camd "$conf"`) || !strings.Contains(string(post), `chmod g+r,o-rwx "$conf"`) {
		t.Error("postinstall.sh does not make the config root:camd, unreadable by others")
	}
}

// TestCopyrightNamesEveryModule keeps packaging/copyright true: every Go
// module linked into camd is named in it with a licence, and the root
// LICENSE is camd's MIT licence.
func TestCopyrightNamesEveryModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f",
		"{{if .Module}}{{if not .Standard}}{{.Module.Path}}{{end}}{{end}}", "../cmd/camd").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	b, err := os.ReadFile("copyright")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, m := range strings.Fields(string(out)) {
		if m == "github.com/camd/camd" {
			continue
		}
		if !strings.Contains(text, m+" ") && !strings.Contains(text, m+"\n") {
			t.Errorf("packaging/copyright does not name %s, which camd links", m)
		}
	}
	lic, err := os.ReadFile(filepath.Join("..", "LICENSE"))
	if err != nil || !strings.HasPrefix(string(lic), "MIT License") {
		t.Errorf("LICENSE is not camd's MIT licence: %v", err)
	}
	if !strings.Contains(text, "Files: *\nCopyright: 2025-2026 the camd authors\nLicense: MIT\n") {
		t.Error("packaging/copyright does not give camd's own files as MIT")
	}
}
