package testutil

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strconv"
	"strings"
)

// Labelled runs f with the pprof label key=val on the calling goroutine.
// Every goroutine started under it, and every one those start, carries the
// label, so that a test can count the goroutines of what it started
// (GoroutinesLabelled) while other tests run in parallel.
func Labelled(key, val string, f func()) {
	pprof.Do(context.Background(), pprof.Labels(key, val), func(context.Context) { f() })
}

// GoroutinesLabelled returns how many goroutines carry the label key=val,
// and their stacks for a failure message.
func GoroutinesLabelled(key, val string) (int, string) {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		panic(err)
	}
	// The debug=1 profile is a header line, then a block per distinct
	// stack and label set: "N @ pcs", "# labels: {"k":"v", …}" if the
	// goroutines have labels, then a line per frame.
	want := strconv.Quote(key) + ":" + strconv.Quote(val)
	n := 0
	var stacks strings.Builder
	for _, block := range strings.Split(b.String(), "\n\n") {
		lines := strings.Split(block, "\n")
		for i := 0; i+1 < len(lines); i++ {
			count, _, ok := strings.Cut(lines[i], " @ ")
			c, err := strconv.Atoi(count)
			if !ok || err != nil {
				continue
			}
			if l := lines[i+1]; strings.HasPrefix(l, "# labels: ") && strings.Contains(l, want) {
				n += c
				stacks.WriteString(strings.Join(lines[i:], "\n"))
				stacks.WriteString("\n\n")
			}
			break
		}
	}
	return n, stacks.String()
}
