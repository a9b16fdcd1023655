package procfd

import (
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestCountSeesNewDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		if _, err := Count(); err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Fatalf("Count on %s: err = %v, want not supported", runtime.GOOS, err)
		}
		return
	}
	before, err := Count()
	if err != nil {
		t.Fatal(err)
	}
	if before.Total == 0 || before.Total != before.Sockets+before.Files+before.Pipes+before.Events+before.Other {
		t.Fatalf("inconsistent counts: %v", before)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}

	during, err := Count()
	if err != nil {
		t.Fatal(err)
	}
	// Other goroutines of the test binary may open or close descriptors
	// meanwhile, so check lower bounds only.
	if during.Sockets < before.Sockets+1 || during.Pipes < before.Pipes+2 || during.Files < before.Files+1 {
		t.Errorf("before %v, with a listener, a pipe and a file open %v", before, during)
	}

	ln.Close()
	r.Close()
	w.Close()
	f.Close()
	after, err := Count()
	if err != nil {
		t.Fatal(err)
	}
	if after.Sockets != before.Sockets || after.Pipes != before.Pipes || after.Files != before.Files {
		t.Errorf("before %v, after closing %v", before, after)
	}
}

func TestString(t *testing.T) {
	c := Counts{Sockets: 8, Files: 5, Pipes: 4, Events: 3, Other: 3, Total: 23}
	if got, want := c.String(), "total=23 sockets=8 files=5 pipes=4 events=3 other=3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
