package netfault

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// cmdTimeout bounds every ip, nft and ss command.
const cmdTimeout = 30 * time.Second

// lab is one test's network: a namespace joined to the host by a veth pair,
// with "camd sim" serving one camera inside it.
type lab struct {
	t      testing.TB
	ns     string // namespace name
	hostIf string // veth end on the host
	nsIf   string // veth end in the namespace
	hostIP string
	nsIP   string
	subnet string // a.b.c.d/30
	guard  string // host nftables table (family ip)

	camAddr string // camera's RTSP address, nsIP:port
	camPort int
	simErr  *testutil.LogBuffer
}

// created records every namespace, host interface and host nftables table a
// test made, so that TestMain can check that none is left behind.
var created struct {
	sync.Mutex
	netns, links, tables []string
}

func remember(list *[]string, name string) {
	created.Lock()
	defer created.Unlock()
	*list = append(*list, name)
}

// leftovers lists what the tests created and is still there.
func leftovers() []string {
	created.Lock()
	defer created.Unlock()
	if len(created.netns)+len(created.links)+len(created.tables) == 0 {
		return nil
	}
	var left []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, n := range created.netns {
			if containsField(string(out), n) {
				left = append(left, "netns "+n)
			}
		}
	}
	for _, l := range created.links {
		if exec.Command("ip", "link", "show", "dev", l).Run() == nil {
			left = append(left, "link "+l)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		for _, tb := range created.tables {
			if containsField(string(out), tb) {
				left = append(left, "nft table "+tb)
			}
		}
	}
	return left
}

func containsField(s, word string) bool {
	for _, f := range strings.Fields(s) {
		if f == word {
			return true
		}
	}
	return false
}

// run runs a command and fails the test if it fails.
func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr runs a command with a timeout; its error includes the output.
func runErr(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// cleanup runs a command at the end of the test, reporting (not ignoring)
// a failure: something would be left behind.
func cleanup(t testing.TB, name string, args ...string) {
	t.Cleanup(func() {
		if _, err := runErr("", name, args...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// newLab builds the namespace, the veth pair, the host guard and starts the
// simulator in the namespace. Everything is undone by t.Cleanup.
func newLab(t *testing.T) *lab {
	t.Helper()
	requireLab(t)
	bin := camdBinary(t)

	id := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	l := &lab{
		t:      t,
		ns:     "camdtest-" + id,
		hostIf: "cth" + id,
		nsIf:   "ctn" + id,
		guard:  "camdtest_" + id,
		simErr: &testutil.LogBuffer{},
	}
	l.pickSubnet()

	run(t, "", "ip", "netns", "add", l.ns)
	remember(&created.netns, l.ns)
	cleanup(t, "ip", "netns", "del", l.ns)

	run(t, "", "ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", l.nsIf, "netns", l.ns)
	remember(&created.links, l.hostIf)
	t.Cleanup(func() {
		// Deleting one end deletes the pair; the namespace's deletion would
		// too, but asynchronously.
		if out, err := runErr("", "ip", "link", "del", l.hostIf); err != nil && !strings.Contains(out, "Cannot find device") {
			t.Errorf("cleanup: %v", err)
		}
	})

	// The guard: nothing for the test subnet may leave by any interface but
	// the veth (with the veth down, the default route would take it).
	run(t, fmt.Sprintf(`table ip %s {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr %s oifname != "%s" counter reject with icmp type admin-prohibited
	}
}
`, l.guard, l.subnet, l.hostIf), "nft", "-f", "-")
	remember(&created.tables, l.guard)
	cleanup(t, "nft", "delete", "table", "ip", l.guard)

	run(t, "", "ip", "addr", "add", l.hostIP+"/30", "dev", l.hostIf)
	run(t, "", "ip", "link", "set", l.hostIf, "up")
	run(t, "", "ip", "-n", l.ns, "link", "set", "lo", "up")
	run(t, "", "ip", "-n", l.ns, "addr", "add", l.nsIP+"/30", "dev", l.nsIf)
	run(t, "", "ip", "-n", l.ns, "link", "set", l.nsIf, "up")

	l.startSim(bin)
	t.Logf("lab: namespace %s, %s %s <-> %s %s, camera rtsp://%s/cam1", l.ns, l.hostIf, l.hostIP, l.nsIf, l.nsIP, l.camAddr)
	return l
}

// pickSubnet picks a random /30 in 10.231.0.0/16 that no host interface
// uses yet, so that parallel runs do not collide.
func (l *lab) pickSubnet() {
	l.t.Helper()
	for range 50 {
		n := rand.IntN(1 << 14)
		base := fmt.Sprintf("10.231.%d.%d", n>>6, (n&63)*4)
		subnet := base + "/30"
		out, err := runErr("", "ip", "-o", "addr", "show", "to", subnet)
		if err != nil {
			l.t.Fatal(err)
		}
		if strings.TrimSpace(out) != "" {
			continue
		}
		ip := net.ParseIP(base).To4()
		l.subnet = subnet
		l.hostIP = net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
		l.nsIP = net.IPv4(ip[0], ip[1], ip[2], ip[3]+2).String()
		return
	}
	l.t.Fatal("no free /30 in 10.231.0.0/16")
}

var simLine = regexp.MustCompile(`^sim: rtsp on (\S+) \(cam1\.\.cam\d+\), control on \S+$`)

// startSim runs "camd sim" in the namespace and reads its address back.
func (l *lab) startSim(bin string) {
	t := l.t
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.ns, bin, "sim",
		"--cameras", "1", "--listen", l.nsIP+":0", "--control=", "--no-udp")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = l.simErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
		_ = cmd.Wait()
		close(done)
	}()
	// "ip netns exec" execs the program, so this is camd sim itself.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(cmdTimeout):
			t.Errorf("camd sim (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("camd sim stderr:\n%s", l.simErr.String())
		}
	})
	timeout := time.After(waitTimeout)
	for l.camAddr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("camd sim exited before printing its address; stderr:\n%s", l.simErr.String())
			}
			if m := simLine.FindStringSubmatch(line); m != nil {
				l.camAddr = m[1]
			}
		case <-timeout:
			t.Fatalf("camd sim printed no address in %s; stderr:\n%s", waitTimeout, l.simErr.String())
		}
	}
	_, port, err := net.SplitHostPort(l.camAddr)
	if err != nil {
		t.Fatalf("camd sim address %q: %v", l.camAddr, err)
	}
	l.camPort, _ = strconv.Atoi(port)
}

// url is the simulated camera's URL.
func (l *lab) url() string { return "rtsp://" + l.camAddr + "/cam1" }

// nsNft loads an nftables script inside the namespace. Tables there go
// with the namespace.
func (l *lab) nsNft(script string) {
	l.t.Helper()
	run(l.t, script, "ip", "netns", "exec", l.ns, "nft", "-f", "-")
}

// nsNftDelete deletes a table inside the namespace.
func (l *lab) nsNftDelete(table string) {
	l.t.Helper()
	run(l.t, "", "ip", "netns", "exec", l.ns, "nft", "delete", "table", "inet", table)
}

// established returns the host's ESTABLISHED TCP connections to the camera,
// as "local -> peer" lines.
func (l *lab) established() []string {
	l.t.Helper()
	out := run(l.t, "", "ss", "-Htn", "state", "established")
	var conns []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// Recv-Q Send-Q Local Peer (no State column with a state filter).
		if len(f) >= 4 && f[3] == l.camAddr {
			conns = append(conns, f[2]+" -> "+f[3])
		}
	}
	return conns
}

// guardRejects returns how many packets the host guard has rejected.
func (l *lab) guardRejects() string {
	l.t.Helper()
	out := run(l.t, "", "nft", "list", "table", "ip", l.guard)
	if m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return "?"
}
