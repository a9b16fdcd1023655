//go:build linux

package packaging

// The container image end to end: mkimage builds it for this machine's
// platform, then it runs under podman where podman can run containers, or
// else is unpacked by umoci and its rootfs run, as the runtime spec umoci
// writes says (user, environment, working dir, command), chrooted in fresh
// network, PID and mount namespaces (unshare), so that its 0.0.0.0 ports
// exist only there. Linux only: it mounts, chroots and unshares.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/test/camdproc"
)

// imageHelperEnv marks the test binary re-run inside the namespaces.
const imageHelperEnv = "CAMD_IMAGE_TEST_BUNDLE"

// imageHealthEnv hands the helper the image's health check (JSON).
const imageHealthEnv = "CAMD_IMAGE_TEST_HEALTH"

// container is the image running one way or another.
type container interface {
	start(t *testing.T)
	// logs is camd's output since the first start.
	logs() string
	// exec runs a command inside (as the image's user) and waits.
	exec(t *testing.T, args ...string) (int, string)
	// health runs the image's health check and returns its status.
	health(t *testing.T) int
	// spawn starts a command inside and leaves it running.
	spawn(t *testing.T, args ...string)
	// running reports whether camd runs.
	running(t *testing.T) bool
	// pid is camd's process as this test sees it.
	pid(t *testing.T) int
	// stop sends SIGTERM and returns the exit status.
	stop(t *testing.T) int
	api() string
}

// buildImage builds camd and the image for this machine's platform.
func buildImage(t *testing.T) (layout string, hc []string) {
	t.Helper()
	// podman names the image after the layout's path, which must be lower
	// case (t.TempDir has the test's name in it).
	dir, err := os.MkdirTemp("", "camd-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	bin := camdproc.Build(dir)
	if bin.Err != nil {
		t.Fatal(bin.Err)
	}
	layout = filepath.Join(dir, "image")
	cmd := exec.Command("go", "run", "./packaging/cmd/mkimage", "-out", layout, "-bin", "linux/"+runtime.GOARCH+"="+bin.Path)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	// The health check comes from the image's own config.
	var idx struct{ Manifests []struct{ Digest string } }
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	var m struct{ Config struct{ Digest string } }
	readJSON(t, blobPath(layout, idx.Manifests[1].Digest), &m)
	var cfg struct {
		Config struct{ Healthcheck struct{ Test []string } }
	}
	readJSON(t, blobPath(layout, m.Config.Digest), &cfg)
	hc = cfg.Config.Healthcheck.Test
	if len(hc) < 2 || hc[0] != "CMD" {
		t.Fatalf("the image's health check is %q, want CMD and a command", hc)
	}
	return layout, hc[1:]
}

func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestImage runs the image: camd starts as the non-root user, the health
// check passes, a camera is added with the token camd printed, SIGTERM
// (podman stop) ends it with status 0 within 2 s, and the next start finds
// the cameras and their status in the volume.
func TestImage(t *testing.T) {
	if bundle := os.Getenv(imageHelperEnv); bundle != "" {
		runBundle(t, bundle)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux only")
	}
	podman, perr := exec.LookPath("podman")
	umoci, uerr := exec.LookPath("umoci")
	if perr != nil && uerr != nil {
		testutil.NeedTool(t, "podman") // skips, or fails in CI
	}
	layout, hc := buildImage(t)
	if perr == nil {
		c, why := newPodman(t, podman, layout, hc)
		if c != nil {
			imageScenario(t, c)
			return
		}
		if uerr != nil {
			t.Fatalf("podman cannot run a container here (%s) and umoci is missing", why)
		}
		t.Logf("podman cannot run a container here (%s): unpacking with umoci instead", why)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the umoci path needs root (unshare, chroot)")
		}
		t.Skip("the umoci path needs root (unshare, chroot)")
	}
	unshare := testutil.NeedTool(t, "unshare")
	testutil.NeedTool(t, "ip")
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", layout+":linux-"+runtime.GOARCH, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary again, inside new namespaces; --kill-child ends
	// whatever it started if it dies.
	cmd := exec.Command(unshare, "--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc",
		self, "-test.run", "^TestImage$", "-test.v", "-test.count=1")
	hcJSON, _ := json.Marshal(hc)
	cmd.Env = append(os.Environ(), imageHelperEnv+"="+bundle, imageHealthEnv+"="+string(hcJSON))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestImage")) {
		t.Fatalf("the image in namespaces: %v\n%s", err, out)
	}
	t.Logf("the image ran from the umoci bundle:\n%s", out)
}

// imageScenario is the test proper, whichever way the image runs.
func imageScenario(t *testing.T, c container) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("camd's output:\n%s", c.logs())
		}
	})
	c.start(t)
	waitUp(t, c, "camd to start and print the token", func() bool { return strings.Contains(c.logs(), "API token created") })
	m := regexp.MustCompile(`token=([0-9a-f]{64})`).FindStringSubmatch(c.logs())
	if m == nil {
		t.Fatalf("no token in camd's first start:\n%s", c.logs())
	}
	token := m[1]

	// The non-root user from the image's /etc/passwd.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+65532\s+65532\s`).Match(status) {
		t.Fatalf("camd does not run as uid 65532:\n%s", status)
	}
	waitFor(t, "the health check to pass", func() bool { return c.health(t) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Off loopback the token is required.
	var apiErr *api.Error
	if _, err := api.NewClient(c.api(), "").Cameras(ctx); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("the API without a token: %v, want 401", err)
	}
	cl := api.NewClient(c.api(), token)
	defer cl.CloseIdleConnections()

	c.spawn(t, "/usr/local/bin/camd", "sim", "--cameras", "1", "--listen", "127.0.0.1:8555", "--control", "off")
	if _, err := cl.AddCamera(ctx, device.Spec{Name: "door", URL: "rtsp://127.0.0.1:8555/cam1"}, true); err != nil {
		t.Fatalf("add a camera with the printed token: %v", err)
	}
	if _, err := cl.AddCamera(ctx, device.Spec{Name: "yard", URL: "rtsp://127.0.0.1:8555/cam1"}, false); err != nil {
		t.Fatal(err)
	}
	var door api.CameraJSON
	waitFor(t, "door RUNNING", func() bool {
		door, err = cl.Camera(ctx, "door")
		return err == nil && door.State == "RUNNING"
	})

	took := time.Now()
	if code := c.stop(t); code != 0 {
		t.Fatalf("camd exited %d on SIGTERM, want 0\n%s", code, c.logs())
	}
	d := time.Since(took)
	if d > 2*time.Second {
		t.Errorf("camd took %s to stop, want at most 2s", d)
	}
	t.Logf("camd ran as uid 65532, the health check passed, door ran with the printed token; SIGTERM: exit 0 after %s", d.Round(time.Millisecond))

	// The next start: same volume, same token, same cameras.
	before := len(c.logs())
	c.start(t)
	waitUp(t, c, "camd to start again", func() bool { return strings.Contains(c.logs()[before:], "camd started") })
	if strings.Contains(c.logs()[before:], token) {
		t.Errorf("the second start printed the token again")
	}
	waitFor(t, "the health check after the restart", func() bool { return c.health(t) == 0 })
	yard, err := cl.Camera(ctx, "yard")
	if err != nil {
		t.Fatalf("the camera added before the restart: %v", err)
	}
	if yard.State != "STOPPED" {
		t.Errorf("yard is %s after the restart, want STOPPED as it was", yard.State)
	}
	again, err := cl.Camera(ctx, "door")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != door.ID || again.PersistedStatus != door.PersistedStatus {
		t.Errorf("door after the restart: id %s status %s, before: id %s status %s", again.ID, again.PersistedStatus, door.ID, door.PersistedStatus)
	}
	// Inside, the CLI finds the API and the token by itself.
	if code, out := c.exec(t, "/usr/local/bin/camd", "camera", "ls"); code != 0 || !strings.Contains(out, "yard") {
		t.Errorf("camd camera ls inside the container: exit %d\n%s", code, out)
	}
	c.spawn(t, "/usr/local/bin/camd", "sim", "--cameras", "1", "--listen", "127.0.0.1:8555", "--control", "off")
	waitFor(t, "door RUNNING after the restart", func() bool {
		again, err = cl.Camera(ctx, "door")
		return err == nil && again.State == "RUNNING"
	})
	if code := c.stop(t); code != 0 {
		t.Fatalf("camd exited %d on the second SIGTERM\n%s", code, c.logs())
	}
	t.Logf("the second start kept door (%s, persisted %s) and yard (STOPPED) and did not print the token again", again.State, again.PersistedStatus)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, what, cond)
}

// waitUp is waitFor that gives up at once when camd has exited.
func waitUp(t *testing.T, c container, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		if cond() {
			return true
		}
		if !c.running(t) {
			t.Fatalf("camd exited while waiting for %s", what)
		}
		return false
	})
}

// runBundle is the helper inside the namespaces: the bundle's rootfs is
// run as its runtime spec says.
func runBundle(t *testing.T, bundle string) {
	var spec struct {
		Process struct {
			Args []string
			Env  []string
			Cwd  string
			User struct{ UID, GID uint32 }
		}
	}
	readJSON(t, filepath.Join(bundle, "config.json"), &spec)
	rootfs := filepath.Join(bundle, "rootfs")
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("proc", filepath.Join(rootfs, "proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount proc: %v", err)
	}
	if err := syscall.Mount("/dev", filepath.Join(rootfs, "dev"), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		t.Fatalf("bind /dev: %v", err)
	}
	c := &chrootContainer{rootfs: rootfs, args: spec.Process.Args, env: spec.Process.Env, cwd: spec.Process.Cwd,
		uid: spec.Process.User.UID, gid: spec.Process.User.GID, out: &testutil.LogBuffer{}}
	if err := json.Unmarshal([]byte(os.Getenv(imageHealthEnv)), &c.hc); err != nil || len(c.hc) == 0 {
		t.Fatalf("%s=%q: %v", imageHealthEnv, os.Getenv(imageHealthEnv), err)
	}
	imageScenario(t, c)
}

// chrootContainer runs the rootfs's processes chrooted, as the image's user.
type chrootContainer struct {
	rootfs   string
	args     []string
	env      []string
	cwd      string
	uid, gid uint32
	hc       []string
	out      *testutil.LogBuffer
	cmd      *exec.Cmd
	done     chan struct{}
}

func (c *chrootContainer) health(t *testing.T) int {
	code, _ := c.exec(t, c.hc...)
	return code
}

func (c *chrootContainer) command(args ...string) *exec.Cmd {
	cmd := &exec.Cmd{Path: args[0], Args: args, Env: c.env, Dir: c.cwd}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     c.rootfs,
		Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

func (c *chrootContainer) start(t *testing.T) {
	c.cmd = c.command(c.args...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %q in the rootfs: %v", c.args, err)
	}
	c.done = make(chan struct{})
	cmd, done := c.cmd, c.done
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
}

func (c *chrootContainer) logs() string { return c.out.String() }

func (c *chrootContainer) exec(t *testing.T, args ...string) (int, string) {
	out, err := c.command(args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%q in the rootfs: %v", args, err)
	}
	if ee != nil {
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

func (c *chrootContainer) spawn(t *testing.T, args ...string) {
	cmd := c.command(args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

func (c *chrootContainer) pid(*testing.T) int { return c.cmd.Process.Pid }

func (c *chrootContainer) running(*testing.T) bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *chrootContainer) stop(t *testing.T) int {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("camd did not exit 30 s after SIGTERM\n%s", c.logs())
	}
	return c.cmd.ProcessState.ExitCode()
}

func (c *chrootContainer) api() string { return "127.0.0.1:7654" }

// podmanContainer runs the image with podman, in a storage of its own.
type podmanContainer struct {
	bin   []string
	name  string
	port  int
	image string
}

func (p *podmanContainer) podman(args ...string) (string, error) {
	cmd := exec.Command(p.bin[0], append(append([]string{}, p.bin[1:]...), args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newPodman pulls the layout into a private podman store and creates the
// container; nil and the reason if podman cannot run one here.
func newPodman(t *testing.T, podman, layout string, hc []string) (*podmanContainer, string) {
	dir := t.TempDir()
	p := &podmanContainer{bin: []string{podman, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs", "--events-backend", "file"}, name: "camd-image-test"}
	out, err := p.podman("pull", "-q", "oci:"+layout+":latest")
	if err != nil {
		t.Fatalf("podman pull oci:%s: %v\n%s", layout, err, out)
	}
	p.image = strings.TrimSpace(out)
	t.Cleanup(func() {
		_, _ = p.podman("rm", "-f", "-t", "0", p.name)
		_, _ = p.podman("volume", "rm", "-f", "camd-image-test")
		_, _ = p.podman("rmi", "-f", p.image)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// podman takes a health check only from Docker-format images; an OCI
	// image's must be given when the container is created.
	hcJSON, _ := json.Marshal(hc)
	out, err = p.podman("create", "--name", p.name, "-p", fmt.Sprintf("127.0.0.1:%d:7654", p.port),
		"-v", "camd-image-test:/var/lib/camd", "--health-cmd", string(hcJSON), "--health-interval", "disable", p.image)
	if err != nil {
		t.Fatalf("podman create: %v\n%s", err, out)
	}
	// Whether podman can run a container at all (in a sandbox without
	// CAP_SYS_RESOURCE or with hybrid cgroups crun cannot), on a
	// container of its own.
	if out, err := p.podman("run", "--rm", p.image, "version"); err != nil {
		return nil, strings.TrimSpace(out)
	}
	return p, ""
}

func (p *podmanContainer) start(t *testing.T) {
	if out, err := p.podman("start", p.name); err != nil {
		t.Fatalf("podman start: %v\n%s", err, out)
	}
}

func (p *podmanContainer) logs() string {
	out, _ := p.podman("logs", p.name)
	return out
}

// health is the check as podman runs it.
func (p *podmanContainer) health(t *testing.T) int {
	_, err := p.podman("healthcheck", "run", p.name)
	return exitCode(t, err)
}

func (p *podmanContainer) exec(t *testing.T, args ...string) (int, string) {
	out, err := p.podman(append([]string{"exec", p.name}, args...)...)
	return exitCode(t, err), out
}

func exitCode(t *testing.T, err error) int {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if ee != nil {
		return ee.ExitCode()
	}
	return 0
}

func (p *podmanContainer) spawn(t *testing.T, args ...string) {
	if out, err := p.podman(append([]string{"exec", "-d", p.name}, args...)...); err != nil {
		t.Fatalf("podman exec -d: %v\n%s", err, out)
	}
}

func (p *podmanContainer) pid(t *testing.T) int {
	out, err := p.podman("inspect", "--format", "{{.State.Pid}}", p.name)
	n, perr := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || perr != nil {
		t.Fatalf("podman inspect: %v %v\n%s", err, perr, out)
	}
	return n
}

func (p *podmanContainer) running(t *testing.T) bool {
	out, err := p.podman("inspect", "--format", "{{.State.Running}}", p.name)
	if err != nil {
		t.Fatalf("podman inspect: %v\n%s", err, out)
	}
	return strings.TrimSpace(out) == "true"
}

func (p *podmanContainer) stop(t *testing.T) int {
	// -t 2: after 2 s podman kills camd, and the status is then not 0.
	if out, err := p.podman("stop", "-t", "2", p.name); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	out, err := p.podman("inspect", "--format", "{{.State.ExitCode}}", p.name)
	n, perr := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || perr != nil {
		t.Fatalf("podman inspect: %v %v\n%s", err, perr, out)
	}
	return n
}

func (p *podmanContainer) api() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }
