package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/daemon"
)

// readBlob reads a blob and checks it against its descriptor.
func readBlob(t *testing.T, dir string, d descriptor) []byte {
	t.Helper()
	hexSum, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q is not sha256", d.Digest)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", hexSum))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hexSum || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: content does not match its descriptor (size %d, want %d)", d.Digest, len(b), d.Size)
	}
	return b
}

type entry struct {
	hdr  tar.Header
	body string
}

// readLayer returns a layer's entries and the digest of the uncompressed tar.
func readLayer(t *testing.T, b []byte) (map[string]entry, string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	out := map[string]entry{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = entry{*h, string(body)}
	}
	return out, "sha256:" + hex.EncodeToString(sum[:])
}

func build(t *testing.T, out string, plats ...string) Options {
	t.Helper()
	dir := t.TempDir()
	o := Options{Out: out, Bins: map[string]string{}, Tag: "latest", Version: "v9.9.9",
		Config: filepath.Join("..", "..", "image", "camd.yaml"), Created: time.Unix(1700000000, 0)}
	o.CA = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(o.CA, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range plats {
		f := filepath.Join(dir, strings.ReplaceAll(p, "/", "-"))
		if err := os.WriteFile(f, []byte("camd for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
		o.Bins[p] = f
	}
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	return o
}

// The layout holds one index with a manifest per platform; every blob
// matches its digest, the layers hold what the image promises, and the
// config carries the user, ports, volume, entrypoint and health check.
func TestLayout(t *testing.T) {
	out := filepath.Join(t.TempDir(), "image")
	plats := []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}
	build(t, out, plats...)

	if b, err := os.ReadFile(filepath.Join(out, "oci-layout")); err != nil || !strings.Contains(string(b), `"imageLayoutVersion":"1.0.0"`) {
		t.Fatalf("oci-layout: %q %v", b, err)
	}
	var top index
	b, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if top.SchemaVersion != 2 || len(top.Manifests) != 1+len(plats) || top.Manifests[0].MediaType != mtIndex ||
		top.Manifests[0].Annotations[refName] != "latest" {
		t.Fatalf("index.json: %s", b)
	}
	var idx index
	if err := json.Unmarshal(readBlob(t, out, top.Manifests[0]), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != len(plats) {
		t.Fatalf("the image index has %d manifests, want %d", len(idx.Manifests), len(plats))
	}
	seen := map[string]bool{}
	var baseDigest string
	for i, md := range idx.Manifests {
		if md.MediaType != mtManifest || md.Platform == nil {
			t.Fatalf("manifest %d: %+v", i, md)
		}
		p := md.Platform.String()
		seen[p] = true
		named := top.Manifests[1+i]
		if named.Digest != md.Digest || named.Annotations[refName] != strings.ReplaceAll(p, "/", "-") {
			t.Errorf("index.json does not name %s's manifest: %+v", p, named)
		}
		var m manifest
		if err := json.Unmarshal(readBlob(t, out, md), &m); err != nil {
			t.Fatal(err)
		}
		var cfg configFile
		if err := json.Unmarshal(readBlob(t, out, m.Config), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.OS+"/"+cfg.Architecture+map[bool]string{true: "/" + cfg.Variant}[cfg.Variant != ""] != p {
			t.Errorf("%s: config says %s/%s/%s", p, cfg.OS, cfg.Architecture, cfg.Variant)
		}
		if len(m.Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
			t.Fatalf("%s: %d layers, %d diff_ids", p, len(m.Layers), len(cfg.RootFS.DiffIDs))
		}
		files := map[string]entry{}
		for j, ld := range m.Layers {
			if ld.MediaType != mtLayer {
				t.Errorf("layer media type %s", ld.MediaType)
			}
			es, diff := readLayer(t, readBlob(t, out, ld))
			if diff != cfg.RootFS.DiffIDs[j] {
				t.Errorf("%s layer %d: diff_id %s, the tar's digest is %s", p, j, cfg.RootFS.DiffIDs[j], diff)
			}
			for k, v := range es {
				files[k] = v
			}
		}
		// The first layer is the same blob for every platform.
		if baseDigest == "" {
			baseDigest = m.Layers[0].Digest
		} else if m.Layers[0].Digest != baseDigest {
			t.Errorf("%s: the base layer differs between platforms", p)
		}
		if e := files["usr/local/bin/camd"]; e.body != "camd for "+p || e.hdr.Mode != 0o755 {
			t.Errorf("%s: /usr/local/bin/camd is %q mode %o", p, e.body, e.hdr.Mode)
		}
		if e := files["var/lib/camd"]; e.hdr.Typeflag != tar.TypeDir || e.hdr.Uid != UID || e.hdr.Gid != GID {
			t.Errorf("%s: /var/lib/camd is not a dir owned by %d:%d: %+v", p, UID, GID, e.hdr)
		}
		if !strings.Contains(files["etc/passwd"].body, "camd:x:65532:65532:") || !strings.Contains(files["etc/group"].body, "camd:x:65532:") {
			t.Errorf("%s: no camd user: %q %q", p, files["etc/passwd"].body, files["etc/group"].body)
		}
		if !strings.Contains(files["etc/camd/camd.yaml"].body, "listen: 0.0.0.0:7654") {
			t.Errorf("%s: /etc/camd/camd.yaml is not the image's config", p)
		}
		if files["etc/ssl/certs/ca-certificates.crt"].body == "" {
			t.Errorf("%s: no CA certificates", p)
		}
		c := cfg.Config
		if c.User != "65532:65532" || !reflect.DeepEqual(c.Entrypoint, []string{BinPath}) ||
			!reflect.DeepEqual(c.Cmd, []string{"run", "--config", ConfigPath}) {
			t.Errorf("%s: user %q entrypoint %q cmd %q", p, c.User, c.Entrypoint, c.Cmd)
		}
		if _, ok := c.Volumes[DataDir]; !ok || len(c.ExposedPorts) != 2 {
			t.Errorf("%s: volumes %v ports %v", p, c.Volumes, c.ExposedPorts)
		}
		for _, port := range []string{"7654/tcp", "8554/tcp"} {
			if _, ok := c.ExposedPorts[port]; !ok {
				t.Errorf("%s: %s not exposed", p, port)
			}
		}
		if c.Healthcheck == nil || !reflect.DeepEqual(c.Healthcheck.Test, []string{"CMD", BinPath, "health"}) {
			t.Errorf("%s: health check %+v", p, c.Healthcheck)
		}
		if c.Labels["org.opencontainers.image.version"] != "v9.9.9" {
			t.Errorf("%s: labels %v", p, c.Labels)
		}
	}
	for _, p := range plats {
		if !seen[p] {
			t.Errorf("no manifest for %s", p)
		}
	}
}

// The same inputs give the same image, byte for byte.
func TestReproducible(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	build(t, a, "linux/amd64")
	build(t, b, "linux/amd64")
	ia, _ := os.ReadFile(filepath.Join(a, "index.json"))
	ib, _ := os.ReadFile(filepath.Join(b, "index.json"))
	if len(ia) == 0 || !bytes.Equal(ia, ib) {
		t.Fatalf("two builds differ:\n%s\n%s", ia, ib)
	}
}

// The archive is the layout as a tar, with an index.json that names the
// one multi-platform image by a full name (what podman load and docker
// load need).
func TestArchive(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "image")
	o := Options{Out: out, Archive: filepath.Join(dir, "camd-image.tar"), Bins: map[string]string{}, Tag: "latest",
		Config: filepath.Join("..", "..", "image", "camd.yaml"), Created: time.Unix(1700000000, 0)}
	o.CA = filepath.Join(dir, "ca.crt")
	bin := filepath.Join(dir, "camd")
	for _, f := range []string{o.CA, bin} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o.Bins["linux/amd64"], o.Bins["linux/arm/v7"] = bin, bin
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(o.Archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names[h.Name] = b
	}
	var idx index
	if err := json.Unmarshal(names["index.json"], &idx); err != nil {
		t.Fatalf("index.json in the archive: %v", err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].MediaType != mtIndex || idx.Manifests[0].Annotations[refName] != "camd:latest" {
		t.Fatalf("the archive's index.json: %s", names["index.json"])
	}
	blobs, _ := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	for _, b := range blobs {
		want, _ := os.ReadFile(b)
		if got, ok := names["blobs/sha256/"+filepath.Base(b)]; !ok || !bytes.Equal(got, want) {
			t.Errorf("the archive lacks or changes %s", filepath.Base(b))
		}
	}
	if _, ok := names["oci-layout"]; !ok || len(blobs) == 0 {
		t.Errorf("the archive has no oci-layout or the layout no blobs")
	}
}

// The image's config is one camd accepts, listening where a container
// needs it to, with the token required and the data dir on the volume.
func TestImageConfig(t *testing.T) {
	c, err := daemon.LoadConfig(filepath.Join("..", "..", "image", "camd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("camd refuses the image's config: %v", err)
	}
	if c.API.Listen != "0.0.0.0:7654" || c.Relay.Listen != "0.0.0.0:8554" || c.DataDir != DataDir {
		t.Errorf("api %s relay %s data dir %s", c.API.Listen, c.Relay.Listen, c.DataDir)
	}
	if c.API.RequireToken != nil && !*c.API.RequireToken || c.API.AllowNoTokenOffLoopback {
		t.Errorf("the image's config waives the token")
	}
}
