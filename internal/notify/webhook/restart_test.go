package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/notify"
	"github.com/camd/camd/internal/testutil"
)

// fileLog is a persistent events.Log for the restart test: the events are
// read from a file written by the test, and the cursors are kept in a file
// replaced at every SetCursor, so that they survive kill -9 as the store's
// would.
type fileLog struct {
	*events.MemLog
	path string
	mu   sync.Mutex
}

func openFileLog(dir string) (*fileLog, error) {
	l := &fileLog{MemLog: events.NewMemLog(0), path: filepath.Join(dir, "cursors.json")}
	b, err := os.ReadFile(filepath.Join(dir, "events.json"))
	if err != nil {
		return nil, err
	}
	var evs []events.Event
	if err := json.Unmarshal(b, &evs); err != nil {
		return nil, err
	}
	for _, e := range evs {
		if _, err := l.Append(e); err != nil {
			return nil, err
		}
	}
	cur := map[string]uint64{}
	if b, err := os.ReadFile(l.path); err == nil {
		if err := json.Unmarshal(b, &cur); err != nil {
			return nil, err
		}
	}
	for k, v := range cur {
		_ = l.MemLog.SetCursor(k, v)
	}
	return l, nil
}

func (l *fileLog) SetCursor(name string, id uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := map[string]uint64{}
	if b, err := os.ReadFile(l.path); err == nil {
		_ = json.Unmarshal(b, &cur)
	}
	cur[name] = id
	b, _ := json.Marshal(cur)
	if err := os.WriteFile(l.path+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(l.path+".tmp", l.path); err != nil {
		return err
	}
	return l.MemLog.SetCursor(name, id)
}

// TestMain runs the notifier as a child process when the restart test
// asks for one.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CAMD_WEBHOOK_CHILD"); dir != "" {
		os.Exit(child(dir, os.Getenv("CAMD_WEBHOOK_URL")))
	}
	os.Exit(m.Run())
}

func child(dir, url string) int {
	l, err := openFileLog(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, err := New(Config{Log: l, Hooks: []Hook{{URL: url}}, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n.Start()
	fmt.Println("started")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	<-ch
	_ = n.Close()
	return 0
}

// The notifier is killed with -9 while deliveries are pending (the
// receiver is down); restarted, it delivers them, in order, and not the
// ones it had delivered before.
func TestKilledWithPendingDeliveries(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, "")
	url := rcv.srv.URL + "/hook"

	// The hook is known with a cursor of 0: everything in the log is for
	// it (as after a first start on an empty history).
	l0, err := openFileLogWith(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notify.StartCursor(l0, CursorName(url)); err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for i := 1; i <= 5; i++ {
		evs = append(evs, events.Event{Time: time.Now(), Camera: "door", Kind: events.CameraDown})
	}
	writeEvents(t, dir, evs)

	run := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CAMD_WEBHOOK_CHILD="+dir, "CAMD_WEBHOOK_URL="+url)
		var out testutil.LogBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = testutil.DieWithParent()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		testutil.WaitFor(t, 30*time.Second, "the child's start", func() bool { return len(out.Lines("started")) > 0 })
		return cmd
	}

	// First run: two events get through, then the receiver fails.
	rcv.limit.Store(2)
	cmd := run()
	testutil.WaitFor(t, 30*time.Second, "failing attempts after two deliveries", func() bool { return rcv.tries() >= 5 })
	delivered := len(rcv.ids())
	if delivered != 2 {
		t.Fatalf("delivered %v before the kill, want 2", rcv.ids())
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	// Second run with the receiver back: the rest arrive.
	rcv.limit.Store(0)
	run()
	testutil.WaitFor(t, 30*time.Second, "every event after the restart", func() bool { return len(rcv.ids()) >= 5 })
	time.Sleep(300 * time.Millisecond)
	inOrder(t, rcv.ids(), []uint64{1, 2, 3, 4, 5})
	if got := len(rcv.ids()); got != 5 {
		t.Errorf("%d deliveries of 5 events: delivered ones were sent again after the restart: %v", got, rcv.ids())
	}
	t.Logf("delivered %d before kill -9, the rest after the restart", delivered)
}

func openFileLogWith(dir string, evs []events.Event) (*fileLog, error) {
	b, _ := json.Marshal(evs)
	if err := os.WriteFile(filepath.Join(dir, "events.json"), b, 0o600); err != nil {
		return nil, err
	}
	return openFileLog(dir)
}

func writeEvents(t *testing.T, dir string, evs []events.Event) {
	t.Helper()
	b, _ := json.Marshal(evs)
	if err := os.WriteFile(filepath.Join(dir, "events.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
