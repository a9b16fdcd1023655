package main

import (
	"fmt"
	"time"
)

// issueGo2rtcR1 is go2rtc's CPU per camera with one reader per camera at
// N = 64 as issue 23 states it, in % of one core: the reference of the
// target when go2rtc is not measured in the run.
const issueGo2rtcR1 = 0.105

// firstReaderBefore is what the first relay reader per camera cost camd at
// N = 64 before the relay's data path was rewritten (RESULTS.md of commit
// 971a4ed: 0.176 % per camera with one reader, 0.028 % ingest only), in %
// of one core per camera.
const firstReaderBefore = 0.148

// pktsBefore is the RTP packets a second each of those readers received.
const pktsBefore = 104.0

// readerRow is one row of the readers table.
type readerRow struct {
	name string
	w    *window
}

func (r *report) readerRows(res *nResult) []readerRow {
	rows := []readerRow{
		{"camd + 1 relay reader/cam", res.R1},
		{"camd + 2 relay readers/cam", res.R2},
		{"camd + 1 relay reader/cam, `read_batch: 0s`", res.UnbatchedR1},
	}
	for _, px := range res.Proxies {
		rows = append(rows, readerRow{px.Name + " + 1 reader/cam", px.R1})
	}
	return rows
}

// everyPacket says whether every reader of w received every packet: none
// missing from the sequence numbers, none ended, none dropped by camd.
func everyPacket(w *window) bool {
	return w != nil && w.Readers > 0 && w.ReaderPackets > 0 && w.Lost == 0 && w.Ended == 0 && w.RelayDropped <= 0
}

func latencyCell(w *window) string {
	if w == nil || w.Latency.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s", ms(w.Latency.P50), ms(w.Latency.P99), ms(w.Latency.Max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// readers writes what every reader received and the latency.
func (r *report) readers(p printer) {
	any := false
	for i := range r.results {
		for _, row := range r.readerRows(&r.results[i]) {
			any = any || (row.w != nil && row.w.Readers > 0)
		}
	}
	if !any {
		return
	}
	p("## Readers: every packet, and the latency\n\n")
	p("The same reader program for every system: a gortsplib client over TCP in the bench's process (its CPU is not the system's) that counts every RTP packet, ")
	p("counts the packets missing from each track's sequence numbers (lost), depacketizes the video and, for every frame with the simulator's send-time stamp, records the time from the stamp to the frame's arrival. ")
	if r.o.noStamp {
		p("This run had no stamps (`-no-stamp`), so no latency. ")
	} else {
		p("The simulator (`camd sim --stamp`) writes the stamp (an H.264 SEI, user_data_unregistered with camd's UUID and the send time in Unix ns) in a packet of its own just before each frame's picture, right before it writes the frame; the relay passes NAL units through unchanged. ")
		p("The latency is end to end, from the simulator's send to the reader's receipt over loopback: it includes camd's ingest batching (`read_batch`) and the relay. ")
	}
	p("\"ended\" counts readers that ended during the window; \"dropped by camd\" is the relay's `readers_dropped` over the window (– for other systems).\n\n")
	p("| N | scenario | readers | packets received | pkt/s per reader min / mean | lost | ended | dropped by camd | every packet | stamped frames/s per reader (min) | latency p50 / p99 / max |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range r.results {
		res := &r.results[i]
		for _, row := range r.readerRows(res) {
			w := row.w
			if w == nil || w.Readers == 0 {
				continue
			}
			dropped := "–"
			if w.RelayDropped >= 0 && !isProxyRow(row.name) {
				dropped = fmt.Sprint(w.RelayDropped)
			}
			p("| %d | %s | %d | %d | %.0f / %.0f | %d | %d | %s | %s | %.1f | %s |\n", res.N, row.name, w.Readers, w.ReaderPackets,
				w.ReaderPktMin, w.ReaderPktMean, w.Lost, w.Ended, dropped, yesNo(everyPacket(w)), w.StampedMin, latencyCell(w))
		}
	}
	p("\n")
}

func isProxyRow(name string) bool { return len(name) > 4 && name[:4] != "camd" }

// proxiesSection writes camd next to go2rtc and mediamtx.
func (r *report) proxiesSection(p printer) {
	any := false
	for _, res := range r.results {
		any = any || len(res.Proxies) > 0
	}
	if !any {
		return
	}
	p("## camd vs go2rtc and mediamtx\n\n")
	p("Each system as an RTSP proxy of the same N simulated cameras (TCP), CPU per camera in %% of one core, each system's own process only, the same reader program for all. ")
	p("go2rtc gets `streams:` and `preload:` entries for every camera (its RTSP server on a free port, every other listener off); mediamtx a path per camera with `sourceOnDemand: no` (RTSP over TCP only). ")
	p("\"one reader costs\" is (with a reader − ingest only) per camera.\n\n")
	for _, res := range r.results {
		if len(res.Proxies) == 0 {
			continue
		}
		n := float64(res.N)
		per := func(w *window) string {
			if w == nil {
				return "–"
			}
			return pct2(w.CPU / n)
		}
		diff := func(a, b *window) string {
			if a == nil || b == nil {
				return "–"
			}
			return pct2((a.CPU - b.CPU) / n)
		}
		p("N = %d:\n\n| | camd |", res.N)
		for _, px := range res.Proxies {
			p(" %s |", px.Name)
		}
		p(" camd, `read_batch: 0s` |\n|---|---|")
		for range res.Proxies {
			p("---|")
		}
		p("---|\n| ingest only | %s |", per(res.Ingest))
		for _, px := range res.Proxies {
			p(" %s |", per(px.Ingest))
		}
		p(" %s |\n| ingest + 1 reader per camera | %s |", per(res.Unbatched), per(res.R1))
		for _, px := range res.Proxies {
			p(" %s |", per(px.R1))
		}
		p(" %s |\n| so one reader costs | %s |", per(res.UnbatchedR1), diff(res.R1, res.Ingest))
		for _, px := range res.Proxies {
			p(" %s |", diff(px.R1, px.Ingest))
		}
		p(" %s |\n| latency p99 with a reader | %s |", diff(res.UnbatchedR1, res.Unbatched), latencyP99(res.R1))
		for _, px := range res.Proxies {
			p(" %s |", latencyP99(px.R1))
		}
		p(" %s |\n\n", latencyP99(res.UnbatchedR1))
		for _, px := range res.Proxies {
			p("- %s: %s", px.Name, px.Version)
			if px.Err != "" {
				p(" — **%s**", px.Err)
			}
			p("\n")
		}
		p("\n")
	}
}

func latencyP99(w *window) string {
	if w == nil || w.Latency.N == 0 {
		return "–"
	}
	return ms(w.Latency.P99)
}

// readerTargets writes the Targets rows of issue 23.
func (r *report) readerTargets(p printer) {
	res := r.find(64)
	if res == nil || res.Ingest == nil || res.R1 == nil {
		p("| camd CPU per camera with 1 relay reader per camera ≤ half of go2rtc's at N = 64 | not measured (needs N = 64 with readers) | – |\n")
	} else {
		c := res.R1.CPU / 64
		var g *proxyResult
		for _, px := range res.Proxies {
			if px.Name == "go2rtc" && px.R1 != nil {
				g = px
			}
		}
		if g != nil {
			gc := g.R1.CPU / 64
			p("| camd CPU per camera with 1 relay reader per camera ≤ half of go2rtc's at N = 64 | %s vs go2rtc %s (measured in this run): ratio %s | %s |\n",
				pct2(c), pct2(gc), ratio(c, gc), yesNo(gc > 0 && c <= gc/2))
		} else {
			p("| camd CPU per camera with 1 relay reader per camera ≤ half of go2rtc's at N = 64 | %s vs ≤ %.4f %%, half of go2rtc's %.3f %%: the reference from issue 23, **not re-measured** (no `GO2RTC`) | %s |\n",
				pct2(c), issueGo2rtcR1/2, issueGo2rtcR1, yesNo(c <= issueGo2rtcR1/2))
		}
	}
	if res != nil && res.R1 != nil && res.R2 != nil {
		second := (res.R2.CPU - res.R1.CPU) / 64
		first := (res.R1.CPU - res.Ingest.CPU) / 64
		p("| the second reader per camera costs ≤ 1/3 of what the first cost before the relay rewrite (%.3f %%, RESULTS.md of 971a4ed), at N = 64 | second reader %s per camera (first reader now %s) vs ≤ %s; a reader gets %.0f packets/s here, %.0f then (video only, no stamps) | %s |\n",
			firstReaderBefore, pct2(second), pct2(first), pct2(firstReaderBefore/3), res.R2.ReaderPktMean, pktsBefore, yesNo(second <= firstReaderBefore/3))
	} else {
		p("| the second reader per camera costs ≤ 1/3 of what the first cost before the relay rewrite, at N = 64 | not measured (needs N = 64 with -two-readers-at 64) | – |\n")
	}
	if res != nil && res.R1 != nil {
		ok := everyPacket(res.R1) && (res.R2 == nil || everyPacket(res.R2))
		cell := fmt.Sprintf("1 reader/cam: %d packets, %d lost, %d ended", res.R1.ReaderPackets, res.R1.Lost, res.R1.Ended)
		if res.R2 != nil {
			cell += fmt.Sprintf("; 2 readers/cam: %d packets, %d lost, %d ended", res.R2.ReaderPackets, res.R2.Lost, res.R2.Ended)
		}
		p("| every relay reader receives every packet at N = 64 | %s | %s |\n", cell, yesNo(ok))
		if res.R1.Latency.N == 0 {
			p("| relay p99 added latency < 150 ms at the defaults, N = 64, 1 reader/cam | no stamped frames (-no-stamp?) | – |\n")
		} else {
			cell := fmt.Sprintf("p99 %s (p50 %s, max %s, %d frames), from the simulator's send", ms(res.R1.Latency.P99), ms(res.R1.Latency.P50), ms(res.R1.Latency.Max), res.R1.Latency.N)
			if w := res.UnbatchedR1; w != nil && w.Latency.N > 0 {
				cell += fmt.Sprintf("; with `read_batch: 0s` p99 %s", ms(w.Latency.P99))
			}
			p("| relay p99 added latency < 150 ms at the defaults, N = 64, 1 reader/cam | %s | %s |\n", cell, yesNo(res.R1.Latency.P99 < 150*time.Millisecond))
		}
	} else {
		p("| every relay reader receives every packet, p99 added latency < 150 ms, at N = 64 | not measured (needs N = 64) | – |\n")
	}
	if res := r.find(256); res != nil && res.R1 != nil {
		w := res.R1
		dropped := "unknown (no relay stats)"
		if w.RelayDropped >= 0 {
			dropped = fmt.Sprint(w.RelayDropped)
		}
		ok := w.Ended == 0 && w.RelayDropped == 0 && w.CPU < 25
		p("| N = 256 with 1 reader/cam: no reader dropped and camd < 25 %% of one core | dropped by camd %s, readers ended %d, lost %d; camd %s | %s |\n",
			dropped, w.Ended, w.Lost, pct(w.CPU), yesNo(ok))
	} else {
		p("| N = 256 with 1 reader/cam: no reader dropped and camd < 25 %% of one core | not measured (needs N = 256) | – |\n")
	}
}
