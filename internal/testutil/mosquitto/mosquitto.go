// Package mosquitto runs a mosquitto MQTT broker on a loopback port for
// tests, and a subscriber that records what it is sent. It is imported by
// _test.go files only.
package mosquitto

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camd/camd/internal/testutil"
)

// Broker is a mosquitto process on 127.0.0.1.
type Broker struct {
	t    testing.TB
	bin  string
	conf string
	Port int
	proc *os.Process // the running mosquitto, nil when none
	done chan struct{}
	Out  testutil.LogBuffer
}

// Start starts mosquitto (anonymous, no persistence) on a free loopback
// port. Without mosquitto the test is skipped (failed under CI=true).
func Start(t testing.TB) *Broker { return start(t, "allow_anonymous true\n") }

// TLSOptions make a broker that speaks TLS and wants a user.
type TLSOptions struct {
	Cert       testutil.Cert
	User, Pass string
}

// StartTLS starts mosquitto serving only TLS with o.Cert and accepting
// only o.User with o.Pass.
func StartTLS(t testing.TB, o TLSOptions) *Broker {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(testutil.NeedTool(t, "mosquitto_passwd"), "-c", "-b", pw, o.User, o.Pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	return start(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\ncertfile %s\nkeyfile %s\n", pw, o.Cert.CertFile, o.Cert.KeyFile))
}

func start(t testing.TB, extra string) *Broker {
	t.Helper()
	b := &Broker{t: t, bin: testutil.NeedTool(t, "mosquitto")}
	b.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	for try := 0; try < 4 && b.proc == nil; try++ {
		b.Port = freePort(t)
		conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\n%s", b.Port, extra)
		if os.Geteuid() == 0 {
			// Else it drops to user mosquitto, who cannot read the test's
			// files.
			conf += "user root\n"
		}
		if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		b.Restart()
	}
	if b.proc == nil {
		t.Fatalf("mosquitto did not start:\n%s", b.Out.String())
	}
	t.Cleanup(b.Kill)
	return b
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Restart starts mosquitto again on the same port (after Kill) and waits
// for it to accept connections; it reports whether it runs.
func (b *Broker) Restart() bool {
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = &b.Out, &b.Out
	// It dies with the test binary, even one killed by a timeout.
	cmd.SysProcAttr = testutil.DieWithParent()
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	up := testutil.Poll(20*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		c, err := net.Dial("tcp", b.Addr())
		if err == nil {
			c.Close()
			return true
		}
		return false
	})
	select {
	case <-exited:
		return false
	default:
	}
	if !up {
		_ = cmd.Process.Kill()
		<-exited
		return false
	}
	b.proc, b.done = cmd.Process, exited
	return true
}

// Addr is host:port.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.Port) }

// URL is the broker's mqtt:// URL.
func (b *Broker) URL() string { return "mqtt://" + b.Addr() }

// Kill kills mosquitto with SIGKILL (its own process only) and waits.
func (b *Broker) Kill() {
	if b.proc != nil {
		_ = b.proc.Kill()
		<-b.done
		b.proc = nil
	}
}

var subSeq atomic.Int64

// Sub is a subscriber that keeps every message per topic.
type Sub struct {
	c   paho.Client
	mu  sync.Mutex
	log map[string][]string
}

// Subscribe connects a subscriber to filter (e.g. "#").
func Subscribe(t testing.TB, b *Broker, filter string) *Sub {
	t.Helper()
	s := &Sub{log: map[string][]string{}}
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).
		SetClientID(fmt.Sprintf("test-sub-%d-%d", os.Getpid(), subSeq.Add(1))).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	tok := s.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.log[m.Topic()] = append(s.log[m.Topic()], string(m.Payload()))
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	return s
}

// Last returns the last payload sent on topic.
func (s *Sub) Last(topic string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log[topic]
	if len(l) == 0 {
		return "", false
	}
	return l[len(l)-1], true
}

// All returns every payload sent on topic, in order.
func (s *Sub) All(topic string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log[topic]...)
}
