package main

// The operator's side of the control API: "camd camera …" and "camd status".
// Every command talks to a running daemon through api.Client; none opens the
// data file, so they work while the daemon holds it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/daemon"
	"github.com/camd/camd/internal/printable"
	"github.com/camd/camd/stream/relay"
)

// cliConn holds the flags every API command shares.
type cliConn struct {
	addr    string
	token   string
	dataDir string
	json    bool
	ca      string
	pin     string
	stderr  io.Writer

	tokenErr error // why the token file could not be read, for a 401 hint
}

// addConnFlags binds the flags every API command shares to c.
func addConnFlags(cmd *cobra.Command, c *cliConn) {
	fs := cmd.Flags()
	fs.StringVar(&c.addr, "api", "", "daemon API address (default $CAMD_API, else "+api.DefaultListen+")")
	fs.StringVar(&c.token, "token", "", "deprecated: other users can read it in the process list; set $CAMD_TOKEN, or use the token file in --data-dir")
	fs.StringVar(&c.ca, "ca", "", "PEM `file` of the CA (or self-signed certificate) to trust for an https:// --api (default $CAMD_CA)")
	fs.StringVar(&c.pin, "fingerprint", "", "SHA-256 fingerprint of the daemon's certificate to accept for an https:// --api (default $CAMD_FINGERPRINT; camd run logs it)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data `dir` holding "+api.TokenFile+" (default "+cliDefaultDataDir()+")")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
}

// client resolves the address and token from flags, environment and token
// file, in that order.
func (c *cliConn) client() *api.Client {
	addr := c.addr
	if addr == "" {
		addr = os.Getenv("CAMD_API")
	}
	tok := c.token
	if tok != "" && c.stderr != nil {
		fmt.Fprintln(c.stderr, "camd: warning: --token is visible to other users in the process list; set CAMD_TOKEN instead")
	}
	if tok == "" {
		tok = os.Getenv("CAMD_TOKEN")
	}
	if tok == "" {
		dir := c.dataDir
		if dir == "" {
			dir = cliDefaultDataDir()
		}
		t, err := api.ReadToken(dir)
		switch {
		case err == nil:
			tok = t
		case errors.Is(err, iofs.ErrNotExist):
			// A daemon on loopback needs no token; not having one is normal.
		default:
			c.tokenErr = err
		}
	}
	t := api.ClientTLS{CAFile: c.ca, Fingerprint: c.pin}
	if t.CAFile == "" {
		t.CAFile = os.Getenv("CAMD_CA")
	}
	if t.Fingerprint == "" {
		t.Fingerprint = os.Getenv("CAMD_FINGERPRINT")
	}
	// A TLS setting that cannot be used fails the first request, which
	// reports it.
	cl, _ := api.NewClientTLS(addr, tok, t)
	return cl
}

// report prints an error the way every API command does, and returns
// errSilent.
func (c *cliConn) report(stderr io.Writer, err error) error {
	var unreach *api.UnreachableError
	var apiErr *api.Error
	switch {
	case errors.As(err, &unreach):
		hint := "is \"camd run\" running? (set --api or CAMD_API)"
		if strings.Contains(unreach.Reason, "certificate") {
			hint = "pass --ca FILE or --fingerprint SHA256 (CAMD_CA, CAMD_FINGERPRINT)"
		}
		fmt.Fprintf(stderr, "camd: %s; %s\n", unreach.Error(), hint)
	case errors.As(err, &apiErr):
		fmt.Fprintf(stderr, "camd: %s\n", apiErr.Message)
		if apiErr.StatusCode == 401 {
			hint := "set CAMD_TOKEN, or point --data-dir at the daemon's data dir (--token works too, but other users can read it)"
			if c.tokenErr != nil {
				hint = fmt.Sprintf("%s (%v)", hint, c.tokenErr)
			}
			fmt.Fprintf(stderr, "camd: %s\n", hint)
		}
	default:
		fmt.Fprintf(stderr, "camd: %v\n", err)
	}
	return errSilent
}

// cliTimeout bounds every CLI request; the daemon answers in milliseconds
// unless it is in trouble, and then the operator should hear about it.
const cliTimeout = 30 * time.Second

// connHelp is what every API command's help says about reaching the daemon.
const connHelp = `The daemon is at --api, else $CAMD_API, else ` + api.DefaultListen + `. The API
token comes from $CAMD_TOKEN, else the token file in --data-dir (a daemon on
loopback needs none).`

func newCameraCmd() *cobra.Command {
	c := groupCmd("camera COMMAND", "add, list, show, remove, start, stop, restart cameras",
		"Manages the running daemon's cameras through its control API.\n\n"+connHelp,
		`  camd camera add door - < door.url
  camd camera ls
  camd camera show door
  camd camera stop door`)
	c.AddCommand(newCameraAddCmd(), newCameraListCmd())
	for _, sub := range []struct{ name, short, long, example string }{
		{"show", "show one camera", "Shows one camera: its state, video, rates, counters and last error.", "  camd camera show door\n  camd camera show door --json"},
		{"rm", "remove a camera", "Stops a camera and deletes it from the daemon's store.", "  camd camera rm door"},
		{"start", "start a camera", "Starts a stopped camera; it stays started across restarts.", "  camd camera start door"},
		{"stop", "stop a camera (it stays stopped across restarts)", "Stops a camera; it stays stopped across daemon restarts until started.", "  camd camera stop door"},
		{"restart", "reconnect a camera from scratch", "Drops a camera's connection and connects again from scratch.", "  camd camera restart door"},
	} {
		c.AddCommand(newCameraOneCmd(sub.name, sub.short, sub.long, sub.example))
	}
	return c
}

// cliStdin is where "camd camera add NAME -" reads the URL.
var cliStdin io.Reader = os.Stdin

// maxURLInput bounds what is read for a URL from stdin or a file: more than
// any valid URL, so that the API names the length problem.
const maxURLInput = 64 << 10

func newCameraAddCmd() *cobra.Command {
	var c cliConn
	var f addFlags
	cmd := &cobra.Command{
		Use:   "add NAME URL|-",
		Short: "add a camera (started unless --stopped)",
		Long: `Adds a camera called NAME at the RTSP URL (rtsp:// or rtsps://) and starts
it unless --stopped is given. The answer is the camera's state right after
the add: STARTING (or RUNNING), or STOPPED with --stopped.

A URL with a password given as an argument can be read by any local user
(/proc/PID/cmdline) and stays in the shell history: give "-" to read it
from stdin, or --url-file F.

` + connHelp,
		Example: `  camd camera add door - < door.url
  camd camera add yard --url-file /etc/camd/yard.url --transport udp
  camd camera add garage rtsp://192.168.1.20:554/stream1 --stopped
  camd camera add gate - --tls-fingerprint 3A:…:9F < gate.url`,
		Args: func(_ *cobra.Command, args []string) error {
			// The arguments are not echoed: one of them may be a URL
			// with a password.
			if f.urlFile != "" && len(args) != 1 {
				return usagef("camera add with --url-file takes only NAME (%d arguments given)", len(args))
			}
			if f.urlFile == "" && len(args) != 2 {
				return usagef("camera add takes NAME and URL, or \"-\" to read the URL from stdin (%d arguments given)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cameraAdd(cmd.Context(), &c, &f, args, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	addConnFlags(cmd, &c)
	fs := cmd.Flags()
	fs.StringVar(&f.transport, "transport", "tcp", "RTSP transport: tcp, udp or auto")
	fs.BoolVar(&f.stopped, "stopped", false, "add the camera without starting it")
	fs.StringVar(&f.urlFile, "url-file", "", "read the camera URL from file `F` instead of the command line")
	fs.StringVar(&f.tlsPin, "tls-fingerprint", "", "rtsps: trust the camera's certificate with this SHA-256 fingerprint (as openssl prints it)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "rtsps: trust certificates signed by the CAs in this PEM file (absolute path, read by the daemon)")
	fs.BoolVar(&f.tlsInsecure, "tls-insecure", false, "rtsps: accept any certificate (encrypted, not authenticated)")
	return cmd
}

// addFlags are camera add's own flags.
type addFlags struct {
	transport, urlFile, tlsPin, tlsCA string
	stopped, tlsInsecure              bool
}

func cameraAdd(ctx context.Context, c *cliConn, f *addFlags, pos []string, stdout, stderr io.Writer) error {
	c.stderr = stderr
	var err error
	var rawURL string
	switch {
	case f.urlFile != "":
		rawURL, err = readURL(f.urlFile, nil)
	case pos[1] == "-":
		rawURL, err = readURL("stdin", cliStdin)
	default:
		rawURL = pos[1]
	}
	if err != nil {
		fmt.Fprintf(stderr, "camd: %v\n", err)
		return exitError{2}
	}
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	start := !f.stopped
	body := api.AddRequest{Name: pos[0], URL: rawURL, Transport: f.transport, Start: &start,
		TLSFingerprint: f.tlsPin, TLSCA: f.tlsCA, TLSInsecure: f.tlsInsecure}
	raw, err := cl.Do(ctx, "POST", "/api/v1/cameras", body)
	if err != nil {
		return c.report(stderr, err)
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	var cam api.CameraJSON
	if err := json.Unmarshal(raw, &cam); err != nil {
		return c.report(stderr, fmt.Errorf("decode response: %w", err))
	}
	// The URL printed is the API's, which is redacted.
	fmt.Fprintf(stdout, "added %s %s (%s, %s)\n", cam.Name, cam.URL, cam.Transport, cam.State)
	if f.tlsInsecure {
		fmt.Fprintln(stderr, "camd: warning: the camera's certificate is not verified (--tls-insecure)")
	}
	if start && strings.HasPrefix(cam.URL, "rtsps://") {
		// A certificate that does not verify is the usual first failure
		// of an rtsps camera: say so now, with the fingerprint to pin.
		if c := firstOutcome(ctx, cl, cam.Name); c.State == "REFUSED" && strings.Contains(c.LastError, "tls_fingerprint") {
			fmt.Fprintf(stderr, "camd: %s: %s\n", cam.Name, c.LastError)
			fmt.Fprintf(stderr, "camd: if that is your camera's certificate, run: camd camera rm %s; camd camera add %s - --tls-fingerprint FINGERPRINT\n", cam.Name, cam.Name)
		}
	}
	return nil
}

// readURL reads a camera URL from r, or from the file named name when r is
// nil. One trailing newline (as an editor or echo leaves) is dropped;
// anything else is the API's to judge. Errors never quote the content.
func readURL(name string, r io.Reader) (string, error) {
	if r == nil {
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("url file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxURLInput+1))
	if err != nil {
		return "", fmt.Errorf("read the URL from %s: %w", name, err)
	}
	if len(b) > maxURLInput {
		return "", fmt.Errorf("the URL in %s is longer than %d bytes", name, maxURLInput)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("no URL in %s (it is empty)", name)
	}
	return s, nil
}

// firstOutcome polls a camera just added until its first attempt has an
// outcome (a state other than STARTING), for up to 5 s.
func firstOutcome(ctx context.Context, cl *api.Client, name string) api.CameraJSON {
	var cam api.CameraJSON
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		raw, err := cl.Do(ctx, "GET", "/api/v1/cameras/"+url.PathEscape(name), nil)
		if err != nil || json.Unmarshal(raw, &cam) != nil {
			return api.CameraJSON{}
		}
		if cam.State != "STARTING" {
			return cam
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cam
}

func newCameraListCmd() *cobra.Command {
	var c cliConn
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list cameras",
		Long: `Lists the cameras with their state, since when, frame rate, bitrate,
reconnects in the last hour and last error. A camera that is not running
shows "-" for its frame rate and bitrate.

` + connHelp,
		Example: `  camd camera ls
  camd camera ls --json
  CAMD_API=192.168.1.5:7654 camd camera ls`,
		Args: noArgs("camera ls"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cameraList(cmd.Context(), &c, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	addConnFlags(cmd, &c)
	return cmd
}

func cameraList(ctx context.Context, c *cliConn, stdout, stderr io.Writer) error {
	c.stderr = stderr
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	raw, err := cl.Do(ctx, "GET", "/api/v1/cameras", nil)
	if err != nil {
		return c.report(stderr, err)
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	var cams []api.CameraJSON
	if err := json.Unmarshal(raw, &cams); err != nil {
		return c.report(stderr, fmt.Errorf("decode response: %w", err))
	}
	if len(cams) == 0 {
		fmt.Fprintln(stdout, `no cameras; add one with "camd camera add NAME - < URL-FILE" (the URL on stdin keeps its password out of the process list)`)
		return nil
	}
	writeCameraTable(stdout, cams, time.Now())
	return nil
}

// writeCameraTable writes the "camd camera ls" table.
func writeCameraTable(w io.Writer, cams []api.CameraJSON, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSINCE\tFPS\tBITRATE\tRECONNECTS/H\tLAST-ERROR")
	for _, cam := range cams {
		since := cam.StateSince
		if since.IsZero() {
			since = cam.Since
		}
		// A running camera's last error is history; camera show has it.
		lastErr := printable.String(cam.LastError)
		if lastErr == "" || cam.State == "RUNNING" {
			lastErr = "-"
		}
		name := cam.Name
		if cam.TLSInsecure {
			name += " (tls-insecure)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, cam.State, humanSince(since, now),
			humanFPS(cam.FPS, cam.State), humanBitrate(cam.BitrateBPS, cam.State), cam.ReconnectsLastHour, clip(lastErr, 60))
	}
	_ = tw.Flush()
}

func newCameraOneCmd(sub, short, long, example string) *cobra.Command {
	var c cliConn
	cmd := &cobra.Command{
		Use:     sub + " NAME",
		Short:   short,
		Long:    long + "\n\n" + connHelp,
		Example: example,
		Args:    exactArgs(1, "camera "+sub, "one camera NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cameraOne(cmd.Context(), &c, sub, args, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	if sub == "rm" {
		cmd.Aliases = []string{"remove"}
	}
	addConnFlags(cmd, &c)
	return cmd
}

func cameraOne(ctx context.Context, c *cliConn, sub string, pos []string, stdout, stderr io.Writer) error {
	c.stderr = stderr
	name := pos[0]
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	method, path := "POST", api.CameraPath(name, sub)
	switch sub {
	case "show":
		method, path = "GET", api.CameraPath(name)
	case "rm", "remove":
		method, path = "DELETE", api.CameraPath(name)
	}
	raw, err := cl.Do(ctx, method, path, nil)
	if err != nil {
		return c.report(stderr, err)
	}
	if method == "DELETE" {
		if c.json {
			b, _ := json.Marshal(map[string]string{"removed": name})
			return printJSON(stdout, b)
		}
		fmt.Fprintf(stdout, "removed %s\n", name)
		return nil
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	var cam api.CameraJSON
	if err := json.Unmarshal(raw, &cam); err != nil {
		return c.report(stderr, fmt.Errorf("decode response: %w", err))
	}
	switch sub {
	case "show":
		writeCameraDetail(stdout, cam, time.Now())
	case "start":
		fmt.Fprintf(stdout, "started %s (%s)\n", cam.Name, cam.State)
	case "stop":
		fmt.Fprintf(stdout, "stopped %s (%s)\n", cam.Name, cam.State)
	case "restart":
		fmt.Fprintf(stdout, "restarted %s (%s)\n", cam.Name, cam.State)
	}
	return nil
}

func writeCameraDetail(w io.Writer, cam api.CameraJSON, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", cam.Name)
	row("ID", cam.ID)
	row("URL", cam.URL)
	if cam.TransportActive != "" && cam.TransportActive != cam.Transport {
		row("Transport", fmt.Sprintf("%s (using %s)", cam.Transport, cam.TransportActive))
	} else {
		row("Transport", cam.Transport)
	}
	switch {
	case cam.TLSFingerprint != "":
		row("TLS", "certificate pinned, SHA-256 "+cam.TLSFingerprint)
	case cam.TLSCA != "":
		row("TLS", "certificate verified against "+cam.TLSCA)
	case cam.TLSInsecure:
		row("TLS", "certificate NOT verified (tls-insecure)")
	case strings.HasPrefix(cam.URL, "rtsps://"):
		row("TLS", "certificate verified against the system's CAs and the host name")
	}
	row("State", fmt.Sprintf("%s since %s", cam.State, humanSince(cam.StateSince, now)))
	row("Persisted", fmt.Sprintf("%s since %s", cam.PersistedStatus, humanTime(cam.Since)))
	video := "-"
	if cam.Codec != "" || cam.Resolution != "" {
		video = strings.TrimSpace(cam.Codec + " " + cam.Resolution)
	}
	row("Video", video)
	if cam.Audio != "" {
		row("Audio", cam.Audio)
	}
	row("FPS", humanFPS(cam.FPS, cam.State))
	row("Bitrate", humanBitrate(cam.BitrateBPS, cam.State))
	last := "never"
	if !cam.LastFrameAt.IsZero() {
		last = humanSince(cam.LastFrameAt, now)
	}
	row("Frames", fmt.Sprintf("%d (%d keyframes), last %s", cam.Frames, cam.Keyframes, last))
	row("Last hour", fmt.Sprintf("%d reconnects, %d stalls", cam.ReconnectsLastHour, cam.StallsLastHour))
	row("Totals", fmt.Sprintf("%d reconnects, %d stalls, %d restarts, %d crashes", cam.ReconnectsTotal, cam.StallsTotal, cam.Restarts, cam.Crashes))
	if cam.LastError != "" {
		row("Last error", fmt.Sprintf("%s (%s)", printable.String(cam.LastError), humanSince(cam.LastErrorAt, now)))
	}
	if cam.Relay != nil {
		row("Relay", humanRelay(cam.Relay, now))
	}
	_ = tw.Flush()
}

// humanRelay says what the relay did with a camera, from the API's relay
// statistics.
func humanRelay(v any, now time.Time) string {
	var st relay.Stats
	b, err := json.Marshal(v)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return "-"
	}
	readers := "readers"
	if st.Readers == 1 {
		readers = "reader"
	}
	out := fmt.Sprintf("%d %s now, %d since start, %d dropped for falling behind; %s sent in %d packets",
		st.Readers, readers, st.ReadersTotal, st.ReadersDropped, humanBytes(st.BytesSent), st.PacketsSent)
	if st.WaitingForStartPoint {
		out += "; readers wait for a keyframe"
	}
	if st.NoStartPointSince != nil {
		out += "; no keyframe since " + humanSince(*st.NoStartPointSince, now) + " (readers start at any frame)"
	}
	return out
}

func newStatusCmd() *cobra.Command {
	var c cliConn
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show the daemon's status",
		Long: `Shows the daemon's version, uptime, cameras by state, open descriptors,
memory, goroutines and supervision settings.

` + connHelp,
		Example: `  camd status
  camd status --json
  camd status --api https://nas.local:7654 --ca /etc/camd/ca.pem`,
		Args: noArgs("status"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdStatus(cmd.Context(), &c, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	addConnFlags(cmd, &c)
	return cmd
}

// cmdStatus is "camd status".
func cmdStatus(ctx context.Context, c *cliConn, stdout, stderr io.Writer) error {
	c.stderr = stderr
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	raw, err := cl.Do(ctx, "GET", "/api/v1/status", nil)
	if err != nil {
		return c.report(stderr, err)
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	var st api.DaemonStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return c.report(stderr, fmt.Errorf("decode response: %w", err))
	}
	writeStatus(stdout, st, cl.Base())
	return nil
}

func writeStatus(w io.Writer, st api.DaemonStatus, base string) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Daemon", base)
	row("Version", st.Version)
	up := time.Duration(st.UptimeSeconds * float64(time.Second)).Round(time.Second)
	row("Uptime", fmt.Sprintf("%s (since %s)", up, humanTime(st.StartedAt)))
	var states []string
	for _, s := range device.States {
		states = append(states, fmt.Sprintf("%d %s", st.Cameras.ByState[s.String()], s))
	}
	row("Cameras", fmt.Sprintf("%d: %s", st.Cameras.Total, strings.Join(states, ", ")))
	if st.OpenFDs.Error != "" {
		row("Open FDs", "unknown ("+st.OpenFDs.Error+")")
	} else {
		f := st.OpenFDs
		row("Open FDs", fmt.Sprintf("%d (%d sockets, %d files, %d pipes, %d events, %d other)", f.Total, f.Sockets, f.Files, f.Pipes, f.Events, f.Other))
	}
	mem := fmt.Sprintf("Go heap %s in use, %s from the OS", humanBytes(st.Memory.HeapInuseBytes), humanBytes(st.Memory.GoSysBytes))
	if st.Memory.RSSBytes > 0 {
		mem = "RSS " + humanBytes(st.Memory.RSSBytes) + ", " + mem
	}
	row("Memory", mem)
	row("Goroutines", fmt.Sprint(st.Goroutines))
	// Every supervision setting, labelled by its config key ("Stall
	// timeout" for stall_timeout).
	s := st.Settings.Durations()
	for _, set := range device.SettingsTable() {
		v := set.Get(s)
		val := device.FormatDuration(v)
		switch {
		case v < 0:
			val = "off"
		case v == 0: // a daemon older than the setting
			val = "-"
		}
		label := strings.ReplaceAll(set.Key, "_", " ")
		row(strings.ToUpper(label[:1])+label[1:], val)
	}
	writeExtra(row, st.Extra)
	_ = tw.Flush()
}

// extraLabels name the daemon's extra status fields; fields not named here
// (added by a newer daemon) get a label made from their key.
var extraLabels = map[string]string{
	"data_dir":            "Data dir",
	"relay":               "Relay",
	"relay_error":         "Relay error",
	"shutdown_deadline":   "Shutdown deadline",
	"expected_fds":        "Expected FDs",
	"fds_degraded":        "FD watchdog",
	"fds_degraded_reason": "FD watchdog reason",
}

// writeExtra writes the status's extra fields in words and units: seconds
// as durations, bytes in KiB/MiB/GiB, true and false as yes and no, and
// objects flattened onto one line, never raw JSON.
func writeExtra(row func(k, v string), extra map[string]json.RawMessage) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		label := extraLabels[k]
		if label == "" {
			label = strings.ReplaceAll(k, "_", " ")
			label = strings.ToUpper(label[:1]) + label[1:]
		}
		var v any
		if json.Unmarshal(extra[k], &v) != nil {
			continue
		}
		val := humanValue(k, v)
		if k == "fds_degraded" {
			val = map[string]string{"yes": "degraded", "no": "ok"}[val]
		}
		row(label, val)
	}
}

// humanValue writes one JSON value for a person; key tells its unit.
func humanValue(key string, v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		switch {
		case key == "shutdown_deadline" || strings.HasSuffix(key, "_seconds") || strings.HasSuffix(key, "_timeout"):
			return time.Duration(x * float64(time.Second)).Round(time.Millisecond).String()
		case strings.HasSuffix(key, "_bytes") && x >= 0:
			return humanBytes(uint64(x))
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, humanValue(key, e))
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(x))
		for _, k := range keys {
			parts = append(parts, strings.ReplaceAll(k, "_", " ")+" "+humanValue(k, x[k]))
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// printJSON prints the API's JSON indented for reading.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		buf.Reset()
		buf.Write(bytes.TrimSpace(raw))
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// humanSince says how long ago t was: "4m12s ago" within a day, else the
// local date and time.
func humanSince(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Second:
		return "just now"
	case d < time.Hour:
		return d.Truncate(time.Second).String() + " ago"
	case d < 24*time.Hour:
		return d.Truncate(time.Minute).String() + " ago"
	}
	return humanTime(t)
}

func humanTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func humanFPS(fps float64, state string) string {
	if state == device.StateStopped.String() || fps == 0 && state != device.StateRunning.String() {
		return "-"
	}
	return fmt.Sprintf("%.1f", fps)
}

func humanBitrate(bps float64, state string) string {
	if state == device.StateStopped.String() || bps == 0 && state != device.StateRunning.String() {
		return "-"
	}
	switch {
	case bps >= 1e6:
		return fmt.Sprintf("%.1f Mb/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.0f kb/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f b/s", bps)
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// clip shortens s to at most n runes, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// cliDefaultDataDir is where "camd run" keeps its data when not told
// otherwise, so that the CLI finds the token file without flags.
func cliDefaultDataDir() string { return daemon.DefaultDataDir() }
