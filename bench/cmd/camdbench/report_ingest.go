package main

import (
	"fmt"
	"math"
)

// f3 formats a ratio with three decimals, "n/a" for none.
func f3(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", x)
}

// times formats a/b as a multiple ("4.2×"), or "–".
func times(a, b float64) string {
	if b <= 0 || a < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// interval formats the 95 % interval of the mean ratio.
func interval(s abStats) string {
	if math.IsNaN(s.Lo) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f – %.3f", s.Lo, s.Hi)
}

// floor writes camd's ingest next to camd with read_batch 0s and the floor.
func (r *report) floor(p printer) {
	any := false
	for _, res := range r.results {
		any = any || res.Floor != nil || res.Unbatched != nil
	}
	if !any {
		return
	}
	p("## Ingest against the floor\n\n")
	p("CPU per camera in %% of one core over steady windows of %v. *camd* is the ingest window above (read_batch at the run's setting); *camd, `read_batch: 0s`* is camd reading every packet as it arrives; ", r.o.steady)
	p("the *floor* is a separate program that opens the same N sessions and only drains the N sockets with camd's batching (64 KiB low-water mark, reads at shared %v ticks), parsing nothing: what the bytes cost to take off the socket. ", r.floorBatch())
	p("\"× floor\" is camd's CPU as a multiple of the floor's. The floor's bytes and reads per second per camera show that it took the whole stream, in batches.\n\n")
	p("| N | camd CPU/cam | camd, `read_batch: 0s` CPU/cam | floor CPU/cam | camd × floor | camd 0s × floor | ffmpeg CPU/cam | floor kB/s per cam | floor reads/s per cam | floor sessions alive |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		n := float64(res.N)
		cpu := func(w *window) (string, float64) {
			if w == nil {
				return "–", -1
			}
			return pct2(w.CPU / n), w.CPU / n
		}
		cs, c := cpu(res.Ingest)
		us, u := cpu(res.Unbatched)
		fls, fl := cpu(res.Floor)
		ffs, _ := cpu(res.FF)
		kb, rd, alive := "–", "–", "–"
		if t := res.FloorTotals; t != nil && t.Seconds > 0 {
			kb = fmt.Sprintf("%.0f", float64(t.Bytes)/t.Seconds/n/1000)
			rd = fmt.Sprintf("%.1f", float64(t.Reads)/t.Seconds/n)
			alive = fmt.Sprintf("%d of %d", t.Alive, t.Sessions)
		}
		cx, ux := "–", "–"
		if c >= 0 && fl > 0 {
			cx = times(c, fl)
		}
		if u >= 0 && fl > 0 {
			ux = times(u, fl)
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", res.N, cs, us, fls, cx, ux, ffs, kb, rd, alive)
	}
	p("\n")
}

// floorBatch is the floor's batching interval as the report names it.
func (r *report) floorBatch() string {
	b := &bench{o: r.o}
	return b.floorBatch().String()
}

// ab writes the interleaved A/B pairs.
func (r *report) ab(p printer) {
	any := false
	for _, res := range r.results {
		any = any || res.AB != nil
	}
	if !any {
		return
	}
	p("## A/B: this camd against the reference\n\n")
	p("A is the camd measured above (%s); B is the reference (%s). ", r.machine.Camd, orDash(r.machine.Ref))
	p("Each window is camd started on a fresh data dir with the run's configuration, all N cameras added, a wait of %v once all are RUNNING, then %v of ingest CPU; then camd is stopped and the other one started. ", r.o.settle, r.o.abSteady)
	p("A and B alternate and the order flips from pair to pair (AB, BA, AB, …), so that a slow drift of the machine weighs on both alike. ")
	p("The ratio of a pair is A's CPU over B's; below 1 A is cheaper. The interval is the 95 %% confidence interval of the mean ratio (Student's t over the pairs): ")
	p("when it contains 1, A and B do not differ beyond the run's noise; when its lower end is above 1, A costs more than B. The CV columns are the spread of A's and of B's own windows (standard deviation over mean), the noise itself.\n\n")
	p("| N | pair | order | A CPU/cam | B CPU/cam | A/B | A fps min | B fps min | machine CPU A / B | other processes A / B |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		if res.AB == nil {
			continue
		}
		n := float64(res.N)
		for i, pr := range res.AB.Pairs {
			order := "A, B"
			if pr.BFirst {
				order = "B, A"
			}
			mach := func(w window) string {
				if w.saturated() {
					return pct(w.Machine) + " **saturated**"
				}
				return pct(w.Machine)
			}
			p("| %d | %d | %s | %s | %s | %s | %.1f | %.1f | %s / %s | %s / %s |\n", res.N, i+1, order,
				pct2(pr.A.CPU/n), pct2(pr.B.CPU/n), f3(pr.ratio()), pr.A.FPSMin, pr.B.FPSMin,
				mach(pr.A), mach(pr.B), pct(max(0, pr.A.other())), pct(max(0, pr.B.other())))
		}
	}
	p("\n| N | pairs | A mean CPU/cam (CV) | B mean CPU/cam (CV) | A/B mean | SD | min – max | 95 %% interval | verdict |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		if res.AB == nil {
			continue
		}
		st := res.AB.stats()
		v, _ := st.verdict()
		if res.AB.Err != "" {
			v = "incomplete: " + res.AB.Err
		}
		p("| %d | %d | %s (%s) | %s (%s) | %s | %s | %s – %s | %s | %s |\n", res.N, st.K,
			pct2(st.AMean), pctCV(st.ACV), pct2(st.BMean), pctCV(st.BCV), f3(st.Mean), f3(st.SD), f3(st.Min), f3(st.Max), interval(st), v)
	}
	p("\n")
}

func pctCV(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", 100*x)
}
