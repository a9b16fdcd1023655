package procfd

import (
	"os"
	"strconv"
	"strings"
)

func count() (Counts, error) {
	return countDir("/proc/self/fd", classifyLinux)
}

// classifyLinux reads the descriptor's link in /proc/self/fd, which names
// its kind: "socket:[123]", "pipe:[456]", "anon_inode:[eventpoll]", or a path.
func classifyLinux(fd int) kind {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return kindGone
	}
	return classifyLink(target)
}

func classifyLink(target string) kind {
	switch {
	case strings.HasPrefix(target, "socket:"):
		return kindSocket
	case strings.HasPrefix(target, "pipe:"):
		return kindPipe
	case strings.HasPrefix(target, "anon_inode:"):
		// [eventpoll], [eventfd], [timerfd], [signalfd], inotify, ...: all
		// kernel event sources. (anon_inode:[pidfd] lands here too, which
		// is fine for leak counting.)
		return kindEvent
	case strings.HasPrefix(target, "/"):
		return kindFile
	}
	return kindOther
}
