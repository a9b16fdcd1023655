package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0–100) of xs by the nearest-rank
// method: the smallest value with at least p% of the values at or below it.
// It returns 0 for no values.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(1, min(len(s), rank))
	return s[rank-1]
}

// durStats summarises a set of durations.
type durStats struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(xs []time.Duration) durStats {
	return durStats{N: len(xs), P50: percentile(xs, 50), P99: percentile(xs, 99), Max: percentile(xs, 100)}
}

func meanU64(xs []uint64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}

func maxU64(xs []uint64) uint64 {
	var m uint64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func meanInt(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}

// parseNList parses "16,64,256".
func parseNList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad camera count %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no camera counts in %q", s)
	}
	return out, nil
}

// parseDurList parses "5s,30s"; every duration must be positive.
func parseDurList(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bad duration %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// mib formats bytes as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// fsec formats a duration in seconds with millisecond precision.
func fsec(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// ratio formats a/b, or "n/a".
func ratio(a, b float64) string {
	if b <= 0 || a < 0 {
		return "n/a"
	}
	r := a / b
	if r >= 0.1 {
		return fmt.Sprintf("%.2f (1/%.1f)", r, 1/r)
	}
	if r > 0 {
		return fmt.Sprintf("%.3f (1/%.0f)", r, 1/r)
	}
	return "0"
}
