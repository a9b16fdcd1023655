package main

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// machine describes where the bench ran.
type machine struct {
	CPU, Kernel, OS, Arch string
	Cores                 int
	RAM                   uint64
	GoHarness             string
	Camd                  string
	// Repo is the commit checked out where the bench ran (the camd
	// binary's own build information lacks it when built with
	// -buildvcs=false).
	Repo       string
	FFmpeg     string
	LoadBefore string
	// Ref describes the reference camd of the A/B pairs ("" for none).
	Ref string
}

// repoState returns the commit of the git checkout in the working
// directory, and whether it has uncommitted changes.
func repoState() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	s := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

// camdBuild describes the camd binary: its version, the Go it was built
// with and the commit, from the build information in the binary.
func camdBuild(path string) string {
	var parts []string
	if out, err := exec.Command(path, "version").Output(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return strings.Join(parts, ", ")
	}
	parts = append(parts, "built with "+bi.GoVersion)
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += " (with uncommitted changes)"
		}
		parts = append(parts, "commit "+rev)
	}
	return strings.Join(parts, ", ")
}

type report struct {
	o                 options
	machine           machine
	started, finished time.Time
	results           []nResult
}

func (r *report) find(n int) *nResult {
	for i := range r.results {
		if r.results[i].N == n {
			return &r.results[i]
		}
	}
	return nil
}

// flags renders the options that shape the figures.
func (o options) flags() string {
	ns := make([]string, len(o.ns))
	for i, n := range o.ns {
		ns[i] = fmt.Sprint(n)
	}
	outs := make([]string, len(o.outages))
	for i, d := range o.outages {
		outs[i] = d.String()
	}
	s := fmt.Sprintf("-n %s -steady %v -settle %v -idle %v -outage %s -stall-timeout %v -stall-cams %d -two-readers-at %d",
		strings.Join(ns, ","), o.steady, o.settle, o.idle, strings.Join(outs, ","), o.stallTimeout, o.stallCams, o.twoReadersAt)
	if o.skipFFmpeg {
		s += " -skip-ffmpeg"
	}
	if o.quick {
		s += " -quick"
	}
	if o.readBatch != "" {
		s += " -read-batch " + o.readBatch
	}
	if o.skipUnbatched {
		s += " -skip-unbatched"
	}
	if o.skipFloor {
		s += " -skip-floor"
	}
	if o.noStamp {
		s += " -no-stamp"
	}
	if o.go2rtc != "" || o.mediamtx != "" {
		if o.go2rtc != "" {
			s += " -go2rtc " + o.go2rtc
		}
		if o.mediamtx != "" {
			s += " -mediamtx " + o.mediamtx
		}
		ns := make([]string, len(o.compareNs))
		for i, n := range o.compareNs {
			ns[i] = fmt.Sprint(n)
		}
		s += " -compare-n " + strings.Join(ns, ",")
	}
	if o.ab != "" || o.abBin != "" {
		if o.ab != "" {
			s += " -ab " + o.ab
		} else {
			s += " -ab-bin " + o.abBin
		}
		ns := make([]string, len(o.abNs))
		for i, n := range o.abNs {
			ns[i] = fmt.Sprint(n)
		}
		s += fmt.Sprintf(" -ab-n %s -ab-pairs %d -ab-steady %v", strings.Join(ns, ","), o.abPairs, o.abSteady)
	}
	return s
}

func pct(x float64) string { return fmt.Sprintf("%.1f %%", x) }

func pct2(x float64) string {
	if x < 1 {
		return fmt.Sprintf("%.3f %%", x)
	}
	return fmt.Sprintf("%.2f %%", x)
}

func kib(b float64) string {
	if b >= 10<<20 {
		return mib(b)
	}
	return fmt.Sprintf("%.0f KiB", b/1024)
}

func yesNo(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**NO**"
}

func (r *report) markdown() string {
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := r.machine

	p("# camd benchmark results\n\n")
	p("Written by `make bench` (`go run ./bench/cmd/camdbench -camd ./camd -out bench/RESULTS.md`).\n")
	p("Every figure is re-measured by that command and never edited by hand; the method is at the end.\n\n")

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| Date | %s (the run took %v) |\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second))
	p("| CPU | %s, %d cores (%s) |\n", m.CPU, m.Cores, m.Arch)
	p("| RAM | %.1f GiB |\n", float64(m.RAM)/(1<<30))
	p("| Kernel | Linux %s |\n", m.Kernel)
	p("| OS | %s |\n", m.OS)
	p("| camd | %s |\n", m.Camd)
	p("| Source tree | %s |\n", orDash(m.Repo))
	p("| Go (bench harness) | %s |\n", m.GoHarness)
	p("| ffmpeg | %s |\n", orDash(m.FFmpeg))
	p("| Load average at start | %s |\n", orDash(m.LoadBefore))
	if m.Ref != "" {
		p("| Reference camd (A/B) | %s |\n", m.Ref)
	}
	p("| Bench flags | `%s` |\n", r.o.flags())
	batch := "read_batch at its default (100 ms)"
	if r.o.readBatch != "" {
		batch = "`read_batch: " + r.o.readBatch + "`"
	}
	if !r.o.skipUnbatched {
		batch += " (`read_batch: 0s` in the rows that say so)"
	}
	p("| camd config | `supervision.stall_timeout: %v`, %s, everything else at its default (backoff 1 s doubling to 30 s) |\n\n", r.o.stallTimeout, batch)

	r.targets(p)
	r.proxiesSection(p)
	r.readers(p)
	r.versus(p)
	r.floor(p)
	r.ab(p)
	r.steady(p)
	r.relay(p)
	r.recovery(p)
	r.stall(p)
	r.restart(p)
	r.notes(p)
	r.method(p)
	return sb.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

type printer func(format string, args ...any)

func (r *report) targets(p printer) {
	p("## Targets\n\n")
	p("| Target | Measured | Met |\n|---|---|---|\n")
	for _, n := range []int{64, 256} {
		if res := r.find(n); res != nil && res.Ingest != nil && res.FF != nil {
			c, f := res.Ingest.CPU/float64(n), res.FF.CPU/float64(n)
			p("| camd ingest CPU per camera ≤ 1/10 of ffmpeg-per-camera at N = %d | %s vs %s per camera: ratio %s | %s |\n",
				n, pct2(c), pct2(f), ratio(c, f), yesNo(f > 0 && c <= f/10))
		} else {
			p("| camd ingest CPU per camera ≤ 1/10 of ffmpeg-per-camera at N = %d | not measured (needs N = %d with ffmpeg) | – |\n", n, n)
		}
	}
	for _, res := range r.results {
		if res.AB == nil {
			continue
		}
		st := res.AB.stats()
		v, ok := st.verdict()
		if res.AB.Err != "" {
			v, ok = "incomplete: "+res.AB.Err, false
		}
		p("| camd ingest CPU per camera no higher than the reference's within the run's noise, at N = %d (A/B pairs) | mean A/B %s over %d pairs, 95 %% interval %s: %s | %s |\n",
			res.N, f3(st.Mean), st.K, interval(st), v, yesNo(ok))
	}
	if res := r.find(64); res != nil && res.Ingest != nil && res.FF != nil {
		cm, fm := res.Ingest.RSSMean/64, res.FF.RSSMean/64
		p("| camd memory (RSS) per camera ≤ 1/20 of ffmpeg-per-camera at N = 64 | %s vs %s per camera: ratio %s | %s |\n",
			kib(cm), kib(fm), ratio(cm, fm), yesNo(fm > 0 && cm <= fm/20))
	} else {
		p("| camd memory (RSS) per camera ≤ 1/20 of ffmpeg-per-camera at N = 64 | not measured (needs N = 64 with ffmpeg) | – |\n")
	}
	if res := r.find(256); res != nil && len(res.Outages) > 0 {
		for _, o := range res.Outages {
			ok := o.Err == "" && o.Recovered == o.Cams && o.All <= 10*time.Second
			p("| 256 cameras all RUNNING within 10 s of the simulator coming back, after a %v outage | %s (%d of %d back; polling saw all at %s) | %s |\n",
				o.Outage, fsec(o.All), o.Recovered, o.Cams, fsec(o.Observed), yesNo(ok))
		}
	} else {
		p("| 256 cameras all RUNNING within 10 s of the simulator coming back | not measured (needs N = 256) | – |\n")
	}
	if res := r.find(256); res != nil && res.Restart != nil {
		rs := res.Restart
		ok := rs.Err == "" && rs.Running == 256 && rs.AllRunning <= 10*time.Second
		p("| start-up: 256 cameras all RUNNING within 10 s of camd's restart | %s from exec (%d of 256) | %s |\n", fsec(rs.AllRunning), rs.Running, yesNo(ok))
	} else {
		p("| start-up: 256 cameras all RUNNING within 10 s of camd's restart | not measured (needs N = 256) | – |\n")
	}
	r.readerTargets(p)
	var worst time.Duration
	var samples int
	bad := false
	for _, res := range r.results {
		if res.Restart == nil {
			continue
		}
		for _, t := range res.Restart.Term {
			samples++
			worst = max(worst, t.D)
			if t.Err != "" {
				bad = true
			}
		}
	}
	if samples > 0 {
		p("| SIGTERM to exit within 2 s | worst of %d: %s%s | %s |\n", samples, fsec(worst), map[bool]string{true: " (a non-zero exit or a kill: see Restart)", false: ""}[bad], yesNo(!bad && worst <= 2*time.Second))
	} else {
		p("| SIGTERM to exit within 2 s | not measured | – |\n")
	}
	p("\n")
}

func (r *report) versus(p printer) {
	p("## camd vs one ffmpeg per camera\n\n")
	p("Per camera = total / N over the steady window. camd ingests with no relay reader; ffmpeg is `ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`, one process per camera, RSS summed over the processes. ")
	p("The ratio is camd / ffmpeg. PSS divides the pages ffmpeg's processes share (libraries) among them, so it is the fairer memory comparison; RSS is what the target names.\n\n")
	p("| N | camd CPU/cam | ffmpeg CPU/cam | CPU ratio | camd RSS/cam | ffmpeg RSS/cam | RSS ratio | camd PSS/cam | ffmpeg PSS/cam | PSS ratio | machine CPU during ffmpeg window |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		if res.Ingest == nil {
			continue
		}
		n := float64(res.N)
		c := res.Ingest
		if res.FF == nil {
			p("| %d | %s | – | – | %s | – | – | %s | – | – | – |\n", res.N, pct2(c.CPU/n), kib(c.RSSMean/n), kib(c.PSS/n))
			continue
		}
		f := res.FF
		sat := fmt.Sprintf("%s of %d %% (processes other than ffmpeg, the simulator and the bench: %s)", pct(f.Machine), 100*f.Cores, pct(max(0, f.other())))
		if f.saturated() {
			sat += " — **saturated**"
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", res.N,
			pct2(c.CPU/n), pct2(f.CPU/n), ratio(c.CPU, f.CPU),
			kib(c.RSSMean/n), kib(f.RSSMean/n), ratio(c.RSSMean, f.RSSMean),
			kib(c.PSS/n), kib(f.PSS/n), ratio(c.PSS, f.PSS), sat)
	}
	p("\n")
}

// scenario is one row of the steady-state tables.
type scenario struct {
	res    *nResult
	name   string
	w      *window
	isCamd bool
}

func (r *report) scenarios() []scenario {
	var out []scenario
	for i := range r.results {
		res := &r.results[i]
		for _, sc := range []scenario{
			{res, "camd, no cameras", res.Idle, true},
			{res, "camd ingest", res.Ingest, true},
			{res, "camd ingest, `read_batch: 0s`", res.Unbatched, true},
			{res, "floor (drain only)", res.Floor, false},
			{res, "camd + 1 relay reader/cam", res.R1, true},
			{res, "camd + 2 relay readers/cam", res.R2, true},
			{res, "camd + 1 relay reader/cam, `read_batch: 0s`", res.UnbatchedR1, true},
			{res, fmt.Sprintf("%d × ffmpeg", res.N), res.FF, false},
		} {
			if sc.w != nil {
				out = append(out, sc)
			}
		}
		for _, px := range res.Proxies {
			if px.Ingest != nil {
				out = append(out, scenario{res, px.Name + " ingest (proxy)", px.Ingest, false})
			}
			if px.R1 != nil {
				out = append(out, scenario{res, px.Name + " + 1 reader/cam", px.R1, false})
			}
		}
	}
	return out
}

func (r *report) steady(p printer) {
	p("## Steady state\n\n")
	p("Each window is %v (the baseline without cameras %v). CPU is in %% of one core (this machine has %d cores: %d %% is all of it). ", r.o.steady, r.o.idle, r.machine.Cores, 100*r.machine.Cores)
	p("\"/cam\" is total / N; \"marginal/cam\" is (total − camd without cameras) / N. RSS and FDs are means of one sample a second, PSS is at the end of the window.\n\n")
	p("| N | scenario | CPU | CPU/cam | marginal CPU/cam | RSS | RSS/cam | marginal RSS/cam | RSS max | PSS | FDs | FDs/cam | goroutines | goroutines/cam | threads |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range r.scenarios() {
		res, w := sc.res, sc.w
		n := float64(res.N)
		idle := w == res.Idle
		per := func(x float64, f func(float64) string) string {
			if idle {
				return "–"
			}
			return f(x / n)
		}
		mcpu, mrss := "–", "–"
		if sc.isCamd && res.Idle != nil && !idle {
			mcpu = pct2((w.CPU - res.Idle.CPU) / n)
			mrss = kib((w.RSSMean - res.Idle.RSSMean) / n)
		}
		gor, gorPer := "–", "–"
		if sc.isCamd {
			gor = fmt.Sprint(w.Goroutines)
			gorPer = per(float64(w.Goroutines), func(x float64) string { return fmt.Sprintf("%.1f", x) })
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %d |\n",
			res.N, sc.name, pct(w.CPU), per(w.CPU, pct2), mcpu,
			mib(w.RSSMean), per(w.RSSMean, kib), mrss, mib(w.RSSMax), mib(w.PSS),
			w.FDs, per(w.FDs, func(x float64) string { return fmt.Sprintf("%.2f", x) }),
			gor, gorPer, w.Threads)
	}
	p("\n### Conditions during each window\n\n")
	p("fps is the per-camera ingest rate camd counted over the window (the simulator sends 25); stalls and reconnects are camd's counts over all cameras during the window (a healthy window has none); reader pkt/s is the RTP packets each reader received (see Readers). ")
	p("The machine's CPU is split into the processes measured (the CPU column above), the simulator, the bench itself (it runs the relay readers), interrupts (loopback networking, charged to no process) and other processes — anything else that ran on the machine meanwhile, which disturbs the figures.\n\n")
	p("| N | scenario | fps min / mean | stalls | reconnects | reader pkt/s min / mean | readers connected in p50 / max | machine CPU | sim | bench | interrupts | other processes | note |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range r.scenarios() {
		res, w := sc.res, sc.w
		fps, st, rc := "–", "–", "–"
		if sc.isCamd && w != res.Idle {
			fps = fmt.Sprintf("%.1f / %.1f", w.FPSMin, w.FPSMean)
			st, rc = fmt.Sprint(w.Stalls), fmt.Sprint(w.Reconnects)
		}
		rd, conn := "–", "–"
		if w.Readers > 0 {
			rd = fmt.Sprintf("%.0f / %.0f", w.ReaderPktMin, w.ReaderPktMean)
			conn = fmt.Sprintf("%s / %s", fsec(w.ReaderConnect.P50), fsec(w.ReaderConnect.Max))
		}
		mach := pct(w.Machine)
		if w.saturated() {
			mach += " **saturated**"
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			res.N, sc.name, fps, st, rc, rd, conn, mach, pct(w.Sim), pct(w.Harness), pct(w.IRQ), pct(max(0, w.other())), orDash(w.Note))
	}
	p("\n")
}

func (r *report) relay(p printer) {
	p("## Relay readers\n\n")
	p("camd's own CPU and RSS with readers on its relay against the same cameras without readers (the readers' CPU is the bench's, not counted here). ")
	p("\"per reader\" is the increase over ingest-only divided by the number of readers.\n\n")
	p("| N | readers | camd CPU | Δ CPU per reader | camd RSS | Δ RSS per reader | FDs | goroutines |\n|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		if res.Ingest == nil {
			continue
		}
		base := res.Ingest
		p("| %d | none | %s | – | %s | – | %.0f | %d |\n", res.N, pct(base.CPU), mib(base.RSSMean), base.FDs, base.Goroutines)
		for _, w := range []*window{res.R1, res.R2} {
			if w == nil || w.Readers == 0 {
				continue
			}
			k := float64(w.Readers)
			p("| %d | %d (%d per camera) | %s | %s | %s | %s | %.0f | %d |\n", res.N, w.Readers, w.Readers/res.N,
				pct(w.CPU), pct2((w.CPU-base.CPU)/k), mib(w.RSSMean), kib((w.RSSMean-base.RSSMean)/k), w.FDs, w.Goroutines)
		}
	}
	if res := r.find(r.o.twoReadersAt); res != nil && res.Ingest != nil && res.R2 != nil {
		p("\nAt N = %d with 2 readers per camera camd uses %.2f× the CPU and %.2f× the RSS of the same cameras without readers.\n",
			res.N, res.R2.CPU/res.Ingest.CPU, res.R2.RSSMean/res.Ingest.RSSMean)
	}
	p("\n")
}

func (r *report) recovery(p printer) {
	p("## Recovery after a drop and after an outage\n\n")
	p("*drop*: the simulator closes every session of every camera at once (its one-shot `drop`) and takes new ones at once; times are from each camera's drop request. ")
	p("*outage*: the simulator refuses new sessions of every camera (`refuse`, 503), drops every session, and after the outage lets them back in (`clear`); times are from each camera's clear request, i.e. from the simulator coming back. ")
	p("Per camera the time is to the `state_since` of its RUNNING state (camd's own timestamp); \"all\" is from the first request to the last camera's RUNNING; \"polled\" is when the bench's 100 ms poll of the camera list first saw all RUNNING. ")
	p("camd's default backoff dominates: a camera retries 0.5–1 s after a drop, and every refused attempt doubles the delay (half to all of it, up to 30 s), so the longer the outage, the longer the first camera may wait after the simulator is back before its next attempt; once one camera is back, the others waiting out a delay retry within 0.5–1 s.\n\n")
	p("| N | event | down before the simulator came back | back | per camera p50 | p99 | max | all | polled | error |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		for _, rc := range append([]*recovery{res.Drop}, res.Outages...) {
			if rc == nil {
				continue
			}
			ev, down := "drop", "–"
			if rc.Outage > 0 {
				ev = fmt.Sprintf("outage %v", rc.Outage)
				down = fmt.Sprintf("%d of %d", rc.Down, rc.Cams)
			}
			p("| %d | %s | %s | %d of %d | %s | %s | %s | %s | %s | %s |\n", res.N, ev, down, rc.Recovered, rc.Cams,
				fsec(rc.PerCam.P50), fsec(rc.PerCam.P99), fsec(rc.PerCam.Max), fsec(rc.All), fsec(rc.Observed), orDash(rc.Err))
		}
	}
	p("\n")
}

func (r *report) stall(p printer) {
	p("## Stall detection\n\n")
	p("Cameras 1..k are stalled at once in the simulator (the connection stays open, no RTP or RTCP); the latency is from the fault request to the camera leaving RUNNING, minus stall_timeout. ")
	p("camd counts the timeout from the last frame it received, which precedes the fault by up to one frame interval (40 ms), so a value can be slightly negative.\n\n")
	p("| N | cameras stalled | stall_timeout | latency − timeout p50 | max | seen by 100 ms polling p50 | max | error |\n|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		s := res.Stall
		if s == nil {
			continue
		}
		p("| %d | %d (%d detected) | %v | %s | %s | %s | %s | %s |\n", res.N, s.Cams, s.Precise.N, s.Threshold,
			fsec(s.Precise.P50), fsec(s.Precise.Max), fsec(s.Observed.P50), fsec(s.Observed.Max), orDash(s.Err))
	}
	p("\n")
}

func (r *report) restart(p printer) {
	p("## SIGTERM and start-up\n\n")
	p("SIGTERM is sent to camd with all N cameras RUNNING (after the fault tests), and again after the restart. The restart uses the same data dir; times are from exec. ")
	p("\"API up\" is when camd logged `camd started`; \"all RUNNING\" is the 100 ms poll that saw every camera RUNNING; per camera is each camera's `state_since`.\n\n")
	p("| N | SIGTERM → exit | exit codes | API up | all RUNNING | per camera p50 | p99 | max | error |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		rs := res.Restart
		if rs == nil {
			continue
		}
		var ts, codes []string
		for _, t := range rs.Term {
			ts = append(ts, fsec(t.D))
			codes = append(codes, fmt.Sprint(t.Code))
		}
		p("| %d | %s | %s | %s | %s (%d of %d) | %s | %s | %s | %s |\n", res.N, strings.Join(ts, ", "), strings.Join(codes, ", "),
			fsec(rs.APIUp), fsec(rs.AllRunning), rs.Running, res.N, fsec(rs.PerCam.P50), fsec(rs.PerCam.P99), fsec(rs.PerCam.Max), orDash(rs.Err))
	}
	p("\n| N | first start: all N RUNNING after adding them over the API |\n|---|---|\n")
	for _, res := range r.results {
		if res.AddAll > 0 {
			p("| %d | %s |\n", res.N, fsec(res.AddAll))
		}
	}
	p("\n")
}

func (r *report) notes(p printer) {
	var notes []string
	for _, res := range r.results {
		for _, e := range res.Errors {
			notes = append(notes, fmt.Sprintf("N = %d: %s", res.N, e))
		}
		if res.AB != nil && res.AB.Err != "" {
			notes = append(notes, fmt.Sprintf("N = %d, A/B pairs: %s", res.N, res.AB.Err))
		}
		if res.AB != nil {
			sat, events := 0, 0
			for _, pr := range res.AB.Pairs {
				for _, w := range []window{pr.A, pr.B} {
					if w.saturated() {
						sat++
					}
					if w.Stalls > 0 || w.Reconnects > 0 || (w.FPSMin > 0 && w.FPSMin < 24) {
						events++
					}
				}
			}
			if sat > 0 {
				notes = append(notes, fmt.Sprintf("N = %d, A/B pairs: %d of %d windows ran on a saturated machine; their CPU figures are lower bounds.", res.N, sat, 2*len(res.AB.Pairs)))
			}
			if events > 0 {
				notes = append(notes, fmt.Sprintf("N = %d, A/B pairs: in %d of %d windows camd counted stalls or reconnects, or a camera ingested under 24 fps.", res.N, events, 2*len(res.AB.Pairs)))
			}
		}
		for _, w := range []struct {
			name string
			w    *window
			own  bool
		}{{"ingest", res.Ingest, true}, {"ingest with read_batch 0s", res.Unbatched, true}, {"floor", res.Floor, false},
			{"1 reader/cam", res.R1, true}, {"2 readers/cam", res.R2, true}, {"1 reader/cam with read_batch 0s", res.UnbatchedR1, true},
			{"ffmpeg", res.FF, false}} {
			if w.w == nil {
				continue
			}
			if w.w.saturated() {
				notes = append(notes, fmt.Sprintf("N = %d, %s: the machine was saturated (%.0f %% of %d %%); the processes measured got less CPU than they would have liked, so their CPU figure is a lower bound.", res.N, w.name, w.w.Machine, 100*w.w.Cores))
			}
			if other := w.w.other(); other > 25 {
				notes = append(notes, fmt.Sprintf("N = %d, %s: other processes on the machine used about %.0f %% of a core during the window; the figures may be disturbed.", res.N, w.name, other))
			}
			if w.own && (w.w.Stalls > 0 || w.w.Reconnects > 0) {
				notes = append(notes, fmt.Sprintf("N = %d, %s: camd counted %d stalls and %d reconnects during the steady window.", res.N, w.name, w.w.Stalls, w.w.Reconnects))
			}
			if w.own && w.w.FPSMin > 0 && w.w.FPSMin < 24 {
				notes = append(notes, fmt.Sprintf("N = %d, %s: the slowest camera ingested %.1f fps (the simulator sends 25).", res.N, w.name, w.w.FPSMin))
			}
		}
	}
	if len(notes) == 0 {
		return
	}
	p("## Notes\n\n")
	for _, n := range notes {
		p("- %s\n", strings.ReplaceAll(n, "\n", " "))
	}
	p("\n")
}

func (r *report) method(p printer) {
	p("## Method\n\n")
	p("- The simulator (`camd sim --cameras N`, H.264 640x360 25 fps plus G.711 audio) is its own process; camd (`camd run`) another, with a fresh data dir per N. Their CPU is measured apart.\n")
	p("- CPU: utime + stime from `/proc/PID/stat` at the start and end of the window, over the wall time, at %.0f ticks/s; machine CPU from `/proc/stat` (everything but idle and iowait). ", clockTicks)
	p("RSS: `VmRSS` of `/proc/PID/status` once a second (summed over the ffmpeg processes); PSS from `/proc/PID/smaps_rollup` at the end; FDs: entries of `/proc/PID/fd`; goroutines from camd's `/api/v1/status` right after the window; threads from `/proc/PID/status`.\n")
	p("- The bench does not call camd's API during a window. It waits %v after every change before a window.\n", r.o.settle)
	p("- Readers are gortsplib clients (TCP) inside the bench, the same program for camd, go2rtc and mediamtx (see Readers); the 2-readers scenario adds a second set of N. ")
	p("With `read_batch: 0s` the second camd also gets one reader per camera at N = %d.\n", r.o.twoReadersAt)
	if !r.o.noStamp {
		p("- The simulator runs with `--stamp`: every frame carries one more RTP packet (the send-time SEI, about 40 bytes) before its picture, for every system alike.\n")
	}
	if r.o.go2rtc != "" || r.o.mediamtx != "" {
		p("- go2rtc and mediamtx run after camd's windows, one at a time, against the same simulator, each on a free loopback port with the configuration the bench writes; their window starts %v after every camera has a session (ingest) or every reader is connected.\n", r.o.settle)
	}
	p("- ffmpeg runs after camd has exited, against the same simulator: `ffmpeg -hide_banner -nostdin -loglevel error -rtsp_transport tcp -i rtsp://SIM/camK -c copy -f null -`; the window starts %v after every camera has a session.\n", r.o.settle)
	p("- Faults go through the simulator's control API, one request per camera (it has no all-cameras endpoint), 16 requests in flight.\n")
	p("- `read_batch: 0s`: after camd's restart test, a second camd on a fresh data dir with `supervision.read_batch: 0s` (everything else as above) ingests the same N cameras; its window starts %v after all are RUNNING.\n", r.o.settle)
	p("- The floor is `camdbench floor`, this bench's own binary started as a separate process so that its CPU is measured alone: N RTSP sessions over TCP to the simulator with the fewest requests (OPTIONS, DESCRIBE, SETUP of every track interleaved, PLAY; an OPTIONS every 20 s as keepalive), then each socket is only drained, read as camd's batched ingest reads: SO_RCVLOWAT of 64 KiB, otherwise one read of everything queued at each tick of a clock shared by every socket (multiples of the read_batch interval). Nothing after PLAY is parsed.\n")
}
