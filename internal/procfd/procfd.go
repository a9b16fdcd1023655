// Package procfd counts the open file descriptors of the running process by
// kind. A raw total is a poor leak detector (the runtime opens an epoll FD
// and pipes lazily, a test harness holds files); counting sockets, files,
// pipes and event FDs separately lets tests and the FD watchdog compare like
// with like.
package procfd

import (
	"fmt"
	"os"
	"strconv"
)

// Counts is the number of open file descriptors of each kind.
type Counts struct {
	// Sockets are TCP, UDP and Unix sockets.
	Sockets int
	// Files are regular files, directories and devices.
	Files int
	// Pipes are pipes and FIFOs.
	Pipes int
	// Events are epoll, eventfd, timerfd, signalfd, inotify (Linux) and
	// kqueue (macOS) descriptors, the runtime's own and others.
	Events int
	// Other is anything else.
	Other int
	// Total is the sum of the above.
	Total int
}

// String formats the counts as
// "total=23 sockets=8 files=5 pipes=4 events=3 other=3".
func (c Counts) String() string {
	return fmt.Sprintf("total=%d sockets=%d files=%d pipes=%d events=%d other=%d",
		c.Total, c.Sockets, c.Files, c.Pipes, c.Events, c.Other)
}

// Count returns the process's open file descriptors by kind. The descriptor
// Count itself opens to list them is not counted.
func Count() (Counts, error) {
	return count()
}

// kind is what classify says about one descriptor.
type kind int

const (
	kindGone kind = iota // closed between listing and inspecting: not counted
	kindSocket
	kindFile
	kindPipe
	kindEvent
	kindOther
)

// add counts one descriptor of kind k.
func (c *Counts) add(k kind) {
	switch k {
	case kindGone:
		return
	case kindSocket:
		c.Sockets++
	case kindFile:
		c.Files++
	case kindPipe:
		c.Pipes++
	case kindEvent:
		c.Events++
	default:
		c.Other++
	}
	c.Total++
}

// countDir lists the descriptor directory dir ("/proc/self/fd",
// "/dev/fd") and classifies each descriptor but the one used to list it.
func countDir(dir string, classify func(fd int) kind) (Counts, error) {
	f, err := os.Open(dir)
	if err != nil {
		return Counts{}, fmt.Errorf("count open file descriptors: %w", err)
	}
	defer f.Close()
	self := int(f.Fd())
	names, err := f.Readdirnames(-1)
	if err != nil {
		return Counts{}, fmt.Errorf("count open file descriptors: list %s: %w", dir, err)
	}
	var c Counts
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == self {
			continue
		}
		c.add(classify(fd))
	}
	return c, nil
}
