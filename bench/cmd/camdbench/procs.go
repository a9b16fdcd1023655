package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// proc is a child process the bench started. Its output goes to files, so
// that nothing in the bench has to keep draining pipes while it measures.
type proc struct {
	name string
	cmd  *exec.Cmd
	// outPath is where stdout goes ("" for /dev/null), errPath stderr.
	outPath, errPath string
	startedAt        time.Time

	done     chan struct{}
	exitedAt time.Time
	waitErr  error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status, -1 for a signal, valid once exited.
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// wait waits up to d for the process to end.
func (p *proc) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// stop sends SIGTERM, and SIGKILL if the process is still there after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.wait(grace) {
		return
	}
	_ = p.cmd.Process.Kill()
	p.wait(10 * time.Second)
}

// tail returns the last n lines of the process's stderr file.
func (p *proc) tail(n int) string {
	if p.errPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.errPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLine polls the file at path until a line matches re, and returns the
// submatches. It gives up when the process exits, d passes or ctx ends.
func (p *proc) waitLine(ctx context.Context, path string, re *regexp.Regexp, d time.Duration) ([]string, error) {
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if m := re.FindStringSubmatch(line); m != nil {
					return m, nil
				}
			}
		}
		if p.exited() {
			return nil, fmt.Errorf("%s exited (%v) before logging what the bench waits for; its last lines:\n%s", p.name, p.waitErr, p.tail(20))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no line matching %q within %v; its last lines:\n%s", p.name, re, d, p.tail(20))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// procSet tracks every child process so that all of them end on every
// exit path of the bench.
type procSet struct {
	mu    sync.Mutex
	procs map[*proc]struct{}
}

func newProcSet() *procSet { return &procSet{procs: map[*proc]struct{}{}} }

// openOut opens an output file in append mode (several processes may share
// one), or returns nil for /dev/null.
func openOut(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
}

// start starts argv with stdout to outPath and stderr to errPath ("" for
// /dev/null; the two may be the same file).
func (ps *procSet) start(name, outPath, errPath string, argv ...string) (*proc, error) {
	return ps.startIn("", name, outPath, errPath, argv...)
}

// startIn is start with the working directory dir ("": the bench's).
func (ps *procSet) startIn(dir, name, outPath, errPath string, argv ...string) (*proc, error) {
	p := &proc{name: name, outPath: outPath, errPath: errPath, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	// The kernel kills the child if the bench dies without cleaning up
	// (SIGKILL of the bench, a crash).
	p.cmd.SysProcAttr = testutil.DieWithParent()
	out, err := openOut(outPath)
	if err != nil {
		return nil, err
	}
	errF := out
	if errPath != outPath {
		if errF, err = openOut(errPath); err != nil {
			if out != nil {
				out.Close()
			}
			return nil, err
		}
	}
	if out != nil {
		p.cmd.Stdout = out
	}
	if errF != nil {
		p.cmd.Stderr = errF
	}
	p.startedAt = time.Now()
	err = p.cmd.Start()
	// The child has its own copies of the descriptors.
	if out != nil {
		out.Close()
	}
	if errF != nil && errF != out {
		errF.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ps.mu.Lock()
	ps.procs[p] = struct{}{}
	ps.mu.Unlock()
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitedAt = time.Now()
		ps.mu.Lock()
		delete(ps.procs, p)
		ps.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// stopAll stops every process still running, all at once.
func (ps *procSet) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := make([]*proc, 0, len(ps.procs))
	for p := range ps.procs {
		list = append(list, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(grace)
		}()
	}
	wg.Wait()
}

// stopProcs stops the given processes in parallel.
func stopProcs(list []*proc, grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(grace)
		}()
	}
	wg.Wait()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errTimeout marks waits that ran out of time (a measurement that failed,
// not a broken bench).
var errTimeout = errors.New("timed out")
