// Package packaging holds camd's service definitions — the systemd unit and
// the launchd plist — and renders them for "camd install".
//
// The same files are shipped by the packages (nfpm.yaml, build-pkg.sh) and
// written by "camd install"; the only difference is the command line: the
// packages run /usr/bin/camd (Linux) or /usr/local/bin/camd (macOS) with the
// packaged config, "camd install" runs the binary it was started from with
// the config it was given.
package packaging

import (
	_ "embed"
	"encoding/xml"
	"fmt"
	"strings"
)

// SystemdUnit is packaging/camd.service as shipped in the .deb and .rpm.
//
//go:embed camd.service
var SystemdUnit string

// LaunchdPlist is packaging/com.camd.camd.plist as shipped in the macOS .pkg.
//
//go:embed com.camd.camd.plist
var LaunchdPlist string

// MacOSUserScript is packaging/scripts/macos-user.sh: it creates the
// LaunchdUser user and group and the dirs camd writes. The macOS .pkg's
// preinstall runs it, and so does "camd install" on macOS.
//
//go:embed scripts/macos-user.sh
var MacOSUserScript string

// Fixed names and paths shared by the unit, the plist and the packages.
const (
	SystemdUnitName   = "camd.service"
	SystemdDataDir    = "/var/lib/camd" // StateDirectory=camd
	SystemdConfigPath = "/etc/camd/camd.yaml"
	SystemdUser       = "camd"

	LaunchdLabel      = "com.camd.camd"
	LaunchdPlistPath  = "/Library/LaunchDaemons/com.camd.camd.plist"
	LaunchdDataDir    = "/Library/Application Support/camd"
	LaunchdConfigPath = "/usr/local/etc/camd/camd.yaml"
	LaunchdLogDir     = "/Library/Logs/camd"
	LaunchdUser       = "_camd" // and group; UserName and GroupName in the plist
)

// RunArgs is the command line (after the binary) that a service runs.
// config may be empty, meaning camd's built-in defaults.
func RunArgs(config, dataDir string) []string {
	args := []string{"run"}
	if config != "" {
		args = append(args, "--config", config)
	}
	return append(args, "--data-dir", dataDir)
}

// SystemdUnitFor returns the unit with its ExecStart running exe with args.
func SystemdUnitFor(exe string, args []string) (string, error) {
	var b strings.Builder
	found := false
	for _, line := range strings.SplitAfter(SystemdUnit, "\n") {
		if strings.HasPrefix(line, "ExecStart=") {
			if found {
				return "", fmt.Errorf("camd.service has more than one ExecStart line")
			}
			found = true
			q := make([]string, 0, 1+len(args))
			for _, a := range append([]string{exe}, args...) {
				q = append(q, systemdQuote(a))
			}
			b.WriteString("ExecStart=" + strings.Join(q, " ") + "\n")
			continue
		}
		b.WriteString(line)
	}
	if !found {
		return "", fmt.Errorf("camd.service has no ExecStart line")
	}
	return b.String(), nil
}

// systemdQuote quotes one word of a systemd command line: specifiers (%) and
// variable references ($) are escaped, and a word with blanks, quotes or
// backslashes is double-quoted with C-style escapes.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// LaunchdPlistFor returns the plist with ProgramArguments set to exe and args.
func LaunchdPlistFor(exe string, args []string) (string, error) {
	const open, close = "<key>ProgramArguments</key>", "</array>"
	i := strings.Index(LaunchdPlist, open)
	if i < 0 {
		return "", fmt.Errorf("com.camd.camd.plist has no ProgramArguments")
	}
	j := strings.Index(LaunchdPlist[i:], close)
	if j < 0 {
		return "", fmt.Errorf("com.camd.camd.plist: ProgramArguments has no </array>")
	}
	var b strings.Builder
	b.WriteString(LaunchdPlist[:i])
	b.WriteString(open + "\n\t<array>\n")
	for _, a := range append([]string{exe}, args...) {
		b.WriteString("\t\t<string>")
		if err := xml.EscapeText(&b, []byte(a)); err != nil {
			return "", err
		}
		b.WriteString("</string>\n")
	}
	b.WriteString("\t" + close)
	b.WriteString(LaunchdPlist[i+j+len(close):])
	return b.String(), nil
}

// TemplateLiteral makes text safe to hand to kardianos/service as a custom
// script: the library parses it as a text/template, so any "{{" must be
// written as an action that prints it.
func TemplateLiteral(text string) string {
	return strings.ReplaceAll(text, "{{", `{{"{{"}}`)
}
