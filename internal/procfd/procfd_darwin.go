package procfd

import "syscall"

func count() (Counts, error) {
	return countDir("/dev/fd", classifyDarwin)
}

// classifyDarwin uses the file mode; macOS has no /proc links to read.
// A kqueue has no file type bits (mode 0), hence Events.
func classifyDarwin(fd int) kind {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return kindGone
	}
	switch uint32(st.Mode) & syscall.S_IFMT {
	case syscall.S_IFSOCK:
		return kindSocket
	case syscall.S_IFIFO:
		return kindPipe
	case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFLNK:
		return kindFile
	case 0:
		return kindEvent
	}
	return kindOther
}
