package procfd

import "testing"

func TestClassifyLink(t *testing.T) {
	for link, want := range map[string]kind{
		"socket:[1234]":          kindSocket,
		"pipe:[99]":              kindPipe,
		"anon_inode:[eventpoll]": kindEvent,
		"anon_inode:[eventfd]":   kindEvent,
		"anon_inode:inotify":     kindEvent,
		"/dev/null":              kindFile,
		"/tmp/x (deleted)":       kindFile,
		"net:[4026531840]":       kindOther,
	} {
		if got := classifyLink(link); got != want {
			t.Errorf("classifyLink(%q) = %v, want %v", link, got, want)
		}
	}
}
