package main

// The operator's side of the control API: "camd camera …" and "camd status".
// Every command talks to a running daemon through api.Client; none opens the
// data file, so they work while the daemon holds it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/camd/camd/api"
	"github.com/camd/camd/daemon"
	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/printable"
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

// cliFlags returns a flag set with the shared flags bound to c.
func cliFlags(name, usage string, c *cliConn, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "api", "", "daemon API address (default $CAMD_API, else "+api.DefaultListen+")")
	fs.StringVar(&c.token, "token", "", "deprecated: other users can read it in the process list; set $CAMD_TOKEN, or use the token file in --data-dir")
	fs.StringVar(&c.ca, "ca", "", "PEM file of the CA (or self-signed certificate) to trust for an https:// --api (default $CAMD_CA)")
	fs.StringVar(&c.pin, "fingerprint", "", "SHA-256 fingerprint of the daemon's certificate to accept for an https:// --api (default $CAMD_FINGERPRINT; camd run logs it)")
	c.stderr = stderr
	fs.StringVar(&c.dataDir, "data-dir", "", "data dir holding "+api.TokenFile+" (default "+cliDefaultDataDir()+")")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+usage)
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Flags:")
		fs.PrintDefaults()
	}
	return fs
}

// cliParse parses flags that may come before, between or after the
// positional arguments ("camd camera add cam1 URL --stopped"), which the
// flag package alone does not allow. A "--" ends the flags. Help that was
// asked for goes to stdout, so that it can be paged; usage printed because
// of a mistake goes to stderr.
func cliParse(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp
			}
			// The flag package has printed the problem and the usage.
			return nil, exitError{2}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
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

const cameraUsage = `Usage: camd camera COMMAND [flags]

Commands:
  add NAME URL|- [--url-file F] [--transport tcp|udp|auto] [--stopped]
                                                         add a camera (started unless --stopped);
                                                         "-" reads the URL from stdin, --url-file
                                                         from a file, which keeps a password out of
                                                         the process list and the shell history
  ls                                                     list cameras
  show NAME                                              show one camera
  rm NAME                                                remove a camera
  start NAME                                             start a camera
  stop NAME                                              stop a camera (it stays stopped across restarts)
  restart NAME                                           reconnect a camera from scratch

Every command takes --api ADDR, --data-dir DIR, --ca FILE, --fingerprint SHA256,
--json and --help. The token comes from $CAMD_TOKEN or the data dir's token file.`

// cmdCamera is "camd camera SUBCOMMAND".
func cmdCamera(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// What the daemon sends (a camera's error text above all) reaches the
	// terminal only without control characters, whatever the daemon did.
	stdout, stderr = printable.NewWriter(stdout), printable.NewWriter(stderr)
	if len(args) == 0 {
		fmt.Fprintln(stderr, cameraUsage)
		return exitError{2}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "--help", "-help", "help":
		fmt.Fprintln(stdout, cameraUsage)
		return nil
	case "add":
		return cameraAdd(ctx, args, stdout, stderr)
	case "ls", "list":
		return cameraList(ctx, args, stdout, stderr)
	case "show", "rm", "remove", "start", "stop", "restart":
		return cameraOne(ctx, sub, args, stdout, stderr)
	}
	fmt.Fprintln(stderr, cameraUsage)
	fmt.Fprintf(stderr, "camd: unknown camera command %q\n", sub)
	return exitError{2}
}

// cliStdin is where "camd camera add NAME -" reads the URL.
var cliStdin io.Reader = os.Stdin

// maxURLInput bounds what is read for a URL from stdin or a file: more than
// any valid URL, so that the API names the length problem.
const maxURLInput = 64 << 10

func cameraAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c cliConn
	fs := cliFlags("camd camera add", "camd camera add NAME URL|- [--url-file F] [--transport tcp|udp|auto] [--stopped] [flags]\n\n"+
		"A URL with a password given as an argument can be read by any local user\n"+
		"(/proc/PID/cmdline) and stays in the shell history: give \"-\" to read it\n"+
		"from stdin (camd camera add door - < door.url) or --url-file F.", &c, stderr)
	transport := fs.String("transport", "tcp", "RTSP transport: tcp, udp or auto")
	stopped := fs.Bool("stopped", false, "add the camera without starting it")
	urlFile := fs.String("url-file", "", "read the camera URL from file `F` instead of the command line")
	tlsPin := fs.String("tls-fingerprint", "", "rtsps: trust the camera's certificate with this SHA-256 fingerprint (as openssl prints it)")
	tlsCA := fs.String("tls-ca", "", "rtsps: trust certificates signed by the CAs in this PEM file (absolute path, read by the daemon)")
	tlsInsecure := fs.Bool("tls-insecure", false, "rtsps: accept any certificate (encrypted, not authenticated)")
	pos, err := cliParse(fs, args, stdout)
	if err != nil {
		return err
	}
	want := 2
	if *urlFile != "" {
		want = 1
	}
	if len(pos) != want {
		// The arguments are not echoed: one of them may be a URL with a
		// password.
		fs.Usage()
		if want == 1 {
			fmt.Fprintf(stderr, "camd: camera add with --url-file takes only NAME (%d arguments given)\n", len(pos))
		} else {
			fmt.Fprintf(stderr, "camd: camera add takes NAME and URL, or \"-\" to read the URL from stdin (%d arguments given)\n", len(pos))
		}
		return exitError{2}
	}
	var rawURL string
	switch {
	case *urlFile != "":
		rawURL, err = readURL(*urlFile, nil)
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
	start := !*stopped
	body := api.AddRequest{Name: pos[0], URL: rawURL, Transport: *transport, Start: &start,
		TLSFingerprint: *tlsPin, TLSCA: *tlsCA, TLSInsecure: *tlsInsecure}
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
	if *tlsInsecure {
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

func cameraList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c cliConn
	fs := cliFlags("camd camera ls", "camd camera ls [flags]", &c, stderr)
	pos, err := cliParse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		fmt.Fprintln(stderr, "camd: camera ls takes no arguments")
		return exitError{2}
	}
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

func cameraOne(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	var c cliConn
	fs := cliFlags("camd camera "+sub, "camd camera "+sub+" NAME [flags]", &c, stderr)
	pos, err := cliParse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		fmt.Fprintf(stderr, "camd: camera %s takes one camera NAME\n", sub)
		return exitError{2}
	}
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
		b, err := json.Marshal(cam.Relay)
		if err == nil {
			row("Relay", string(b))
		}
	}
	_ = tw.Flush()
}

const statusUsage = "camd status [flags]"

// cmdStatus is "camd status".
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stdout, stderr = printable.NewWriter(stdout), printable.NewWriter(stderr)
	var c cliConn
	fs := cliFlags("camd status", statusUsage, &c, stderr)
	pos, err := cliParse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		fmt.Fprintln(stderr, "camd: status takes no arguments")
		return exitError{2}
	}
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
	s := st.Settings.Durations()
	row("Stall timeout", s.StallTimeout.String())
	row("Flap debounce", s.FlapDebounce.String())
	row("Crashed after", s.CrashedAfter.String())
	row("Force restart", s.ForceRestartAfter.String())
	row("Backoff", fmt.Sprintf("%s … %s", s.BackoffMin, s.BackoffMax))
	keys := make([]string, 0, len(st.Extra))
	for k := range st.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row(k, string(st.Extra[k]))
	}
	_ = tw.Flush()
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
	if fps == 0 && state != device.StateRunning.String() {
		return "-"
	}
	return fmt.Sprintf("%.1f", fps)
}

func humanBitrate(bps float64, state string) string {
	if bps == 0 && state != device.StateRunning.String() {
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
