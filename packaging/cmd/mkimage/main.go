// Command mkimage writes camd's container image as an OCI image layout
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
// one image index holding a manifest per platform, each of two layers on
// an empty base. It needs no container daemon and no registry.
//
//	go run ./packaging/cmd/mkimage -out dist/image \
//	    -bin linux/amd64=dist/camd-linux-amd64 -bin linux/arm64=dist/camd-linux-arm64 \
//	    -bin linux/arm/v7=dist/camd-linux-arm
//
// The layout is written by hand rather than with a container library: the
// format is a few JSON documents and gzipped tars named by their SHA-256,
// and writing it directly keeps the output byte-for-byte reproducible and
// camd's module graph free of a large dependency used only here.
//
// The first layer (shared by every platform) holds /etc/passwd and
// /etc/group with the camd user, the CA certificates, /etc/camd/camd.yaml,
// /var/lib/camd owned by camd, and /tmp; the second holds the platform's
// /usr/local/bin/camd.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The image's fixed names. UID and GID 65532 are the usual non-root user
// of distroless images, far from any host user.
const (
	UID        = 65532
	GID        = 65532
	User       = "camd"
	BinPath    = "/usr/local/bin/camd"
	ConfigPath = "/etc/camd/camd.yaml"
	DataDir    = "/var/lib/camd"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"
)

// Media types of the OCI image spec.
const (
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	refName    = "org.opencontainers.image.ref.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// parsePlatform reads "linux/amd64" or "linux/arm/v7".
func parsePlatform(s string) (platform, error) {
	p := strings.Split(s, "/")
	if len(p) < 2 || len(p) > 3 || p[0] == "" || p[1] == "" {
		return platform{}, fmt.Errorf("platform %q: want OS/ARCH or OS/ARCH/VARIANT", s)
	}
	pl := platform{OS: p[0], Architecture: p[1]}
	if len(p) == 3 {
		pl.Variant = p[2]
	}
	return pl, nil
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// tag is the ref name of one platform's manifest in index.json, for tools
// that unpack a single manifest (umoci): "linux-arm-v7".
func (p platform) tag() string { return strings.ReplaceAll(p.String(), "/", "-") }

// Options say what to build.
type Options struct {
	Out      string            // the layout directory; replaced
	Archive  string            // if set, also an oci-archive tar of the layout
	Bins     map[string]string // platform → camd binary
	Config   string            // the image's camd.yaml
	CA       string            // the CA bundle
	Tag      string            // ref name of the multi-platform index
	Version  string
	Created  time.Time
	Revision string
}

// healthcheck is Docker's HEALTHCHECK in an image config. The OCI config
// has no such field; Docker reads it from any image, podman only from
// images in Docker format (the README says how to pass it to podman).
type healthcheck struct {
	Test        []string      `json:"Test"`
	Interval    time.Duration `json:"Interval"`
	Timeout     time.Duration `json:"Timeout"`
	StartPeriod time.Duration `json:"StartPeriod"`
	Retries     int           `json:"Retries"`
}

type imageConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal"`
	Healthcheck  *healthcheck        `json:"Healthcheck,omitempty"`
}

type historyEntry struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type configFile struct {
	Created      string         `json:"created"`
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Variant      string         `json:"variant,omitempty"`
	Config       imageConfig    `json:"config"`
	RootFS       rootFS         `json:"rootfs"`
	History      []historyEntry `json:"history"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// RunArgs is the image's command after the entrypoint (camd).
var RunArgs = []string{"run", "--config", ConfigPath}

// layout writes content-addressed blobs under dir.
type layout struct{ dir string }

func (l layout) blob(mediaType string, b []byte) (descriptor, error) {
	sum := sha256.Sum256(b)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	p := filepath.Join(l.dir, "blobs", "sha256", hex.EncodeToString(sum[:]))
	if _, err := os.Stat(p); err == nil {
		return d, nil // the same content, shared between platforms
	}
	return d, os.WriteFile(p, b, 0o644)
}

func (l layout) json(mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	return l.blob(mediaType, b)
}

// layer is a tar's compressed blob and its uncompressed digest (diff_id).
func (l layout) layer(tarball []byte) (descriptor, string, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return descriptor{}, "", err
	}
	if _, err := zw.Write(tarball); err != nil {
		return descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return descriptor{}, "", err
	}
	sum := sha256.Sum256(tarball)
	d, err := l.blob(mtLayer, gz.Bytes())
	return d, "sha256:" + hex.EncodeToString(sum[:]), err
}

// tarFile is one entry of a layer.
type tarFile struct {
	name     string // without the leading slash
	mode     int64
	uid, gid int
	body     []byte // nil for a directory
	dir      bool
}

func writeTar(files []tarFile, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// baseFiles is the first layer: what camd needs besides itself.
func baseFiles(config, ca []byte) []tarFile {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:camd:%s:/sbin/nologin\n", User, UID, GID, DataDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", User, GID)
	dir := func(name string, mode int64, uid int) tarFile {
		return tarFile{name: name, mode: mode, uid: uid, gid: uid, dir: true}
	}
	file := func(name string, mode int64, body []byte) tarFile {
		return tarFile{name: name, mode: mode, body: body}
	}
	return []tarFile{
		dir("etc", 0o755, 0),
		file("etc/passwd", 0o644, []byte(passwd)),
		file("etc/group", 0o644, []byte(group)),
		dir("etc/camd", 0o755, 0),
		file(strings.TrimPrefix(ConfigPath, "/"), 0o644, config),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		file(strings.TrimPrefix(CAPath, "/"), 0o644, ca),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/local", 0o755, 0),
		dir("usr/local/bin", 0o755, 0),
		dir("var", 0o755, 0),
		dir("var/lib", 0o755, 0),
		dir(strings.TrimPrefix(DataDir, "/"), 0o700, UID),
	}
}

// Build writes the layout (and the archive, if asked).
func Build(o Options) error {
	if len(o.Bins) == 0 {
		return errors.New("no -bin PLATFORM=FILE given")
	}
	config, err := os.ReadFile(o.Config)
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	ca, err := os.ReadFile(o.CA)
	if err != nil {
		return fmt.Errorf("CA certificates (Debian package ca-certificates): %w", err)
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return err
	}
	l := layout{dir: o.Out}
	if err := os.MkdirAll(filepath.Join(o.Out, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	created := o.Created.UTC().Format(time.RFC3339)
	baseTar, err := writeTar(baseFiles(config, ca), o.Created)
	if err != nil {
		return err
	}
	baseDesc, baseDiff, err := l.layer(baseTar)
	if err != nil {
		return err
	}

	plats := make([]string, 0, len(o.Bins))
	for p := range o.Bins {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	labels := map[string]string{
		"org.opencontainers.image.title":       "camd",
		"org.opencontainers.image.description": "camd keeps RTSP cameras alive and serves them again",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    "MIT",
		"org.opencontainers.image.source":      "https://github.com/camd/camd",
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	var top, perPlat []descriptor
	for _, ps := range plats {
		pl, err := parsePlatform(ps)
		if err != nil {
			return err
		}
		bin, err := os.ReadFile(o.Bins[ps])
		if err != nil {
			return fmt.Errorf("camd for %s: %w", ps, err)
		}
		binTar, err := writeTar([]tarFile{{name: strings.TrimPrefix(BinPath, "/"), mode: 0o755, body: bin}}, o.Created)
		if err != nil {
			return err
		}
		binDesc, binDiff, err := l.layer(binTar)
		if err != nil {
			return err
		}
		cfg := configFile{
			Created: created, Architecture: pl.Architecture, OS: pl.OS, Variant: pl.Variant,
			Config: imageConfig{
				User:         fmt.Sprintf("%d:%d", UID, GID),
				ExposedPorts: map[string]struct{}{"7654/tcp": {}, "8554/tcp": {}},
				// XDG_STATE_HOME makes /var/lib/camd the CLI's default data
				// dir too, so "podman exec NAME camd camera ls" finds the
				// token; HOME is the camd user's.
				Env:         []string{"PATH=/usr/local/bin", "HOME=" + DataDir, "XDG_STATE_HOME=/var/lib", "SSL_CERT_FILE=" + CAPath},
				Entrypoint:  []string{BinPath},
				Cmd:         RunArgs,
				Volumes:     map[string]struct{}{DataDir: {}},
				WorkingDir:  DataDir,
				Labels:      labels,
				StopSignal:  "SIGTERM",
				Healthcheck: &healthcheck{Test: []string{"CMD", BinPath, "health"}, Interval: 30 * time.Second, Timeout: 10 * time.Second, StartPeriod: 10 * time.Second, Retries: 3},
			},
			RootFS: rootFS{Type: "layers", DiffIDs: []string{baseDiff, binDiff}},
			History: []historyEntry{
				{Created: created, CreatedBy: "mkimage: users, CA certificates, " + ConfigPath + ", " + DataDir},
				{Created: created, CreatedBy: "mkimage: " + BinPath + " " + o.Version},
			},
		}
		cfgDesc, err := l.json(mtConfig, cfg)
		if err != nil {
			return err
		}
		mDesc, err := l.json(mtManifest, manifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfgDesc, Layers: []descriptor{baseDesc, binDesc}})
		if err != nil {
			return err
		}
		p := pl
		mDesc.Platform = &p
		perPlat = append(perPlat, mDesc)
		named := mDesc
		named.Annotations = map[string]string{refName: pl.tag()}
		top = append(top, named)
	}
	idxDesc, err := l.json(mtIndex, index{SchemaVersion: 2, MediaType: mtIndex, Manifests: perPlat})
	if err != nil {
		return err
	}
	idxDesc.Annotations = map[string]string{refName: o.Tag}
	// index.json names the multi-platform index (podman, skopeo, docker
	// load pick their platform from it) and each platform's manifest on
	// its own (umoci unpacks a single manifest).
	top = append([]descriptor{idxDesc}, top...)
	b, err := json.Marshal(index{SchemaVersion: 2, MediaType: mtIndex, Manifests: top})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "index.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	if o.Archive == "" {
		return nil
	}
	// The archive names the multi-platform index alone, "podman load"
	// taking an archive only when index.json holds one image, and by a
	// full name, which podman load and docker load give the image.
	named := idxDesc
	name := "camd:" + o.Tag
	named.Annotations = map[string]string{refName: name, "io.containerd.image.name": name}
	b, err = json.Marshal(index{SchemaVersion: 2, MediaType: mtIndex, Manifests: []descriptor{named}})
	if err != nil {
		return err
	}
	return writeArchive(o.Out, o.Archive, b, o.Created)
}

// writeArchive tars the layout directory: an oci-archive ("podman load -i",
// "docker load" from Docker 25).
// indexJSON replaces the layout's index.json in the archive.
func writeArchive(dir, out string, indexJSON []byte, mtime time.Time) error {
	var files []tarFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			files = append(files, tarFile{name: filepath.ToSlash(rel), mode: 0o755, dir: true})
			return nil
		}
		b, err := os.ReadFile(p)
		if rel == "index.json" {
			b = indexJSON
		}
		files = append(files, tarFile{name: filepath.ToSlash(rel), mode: 0o644, body: b})
		return err
	})
	if err != nil {
		return err
	}
	b, err := writeTar(files, mtime)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// binFlags is the repeated -bin PLATFORM=FILE.
type binFlags map[string]string

func (b binFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binFlags) Set(s string) error {
	p, f, ok := strings.Cut(s, "=")
	if !ok || f == "" {
		return fmt.Errorf("want PLATFORM=FILE, got %q", s)
	}
	if _, err := parsePlatform(p); err != nil {
		return err
	}
	b[p] = f
	return nil
}

// created is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func created() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func main() {
	o := Options{Bins: binFlags{}}
	flag.StringVar(&o.Out, "out", "dist/image", "OCI layout `dir` to write (replaced)")
	flag.StringVar(&o.Archive, "archive", "", "also write the layout as an oci-archive `tar`")
	flag.Var(binFlags(o.Bins), "bin", "`PLATFORM=FILE`: the camd binary for linux/amd64, linux/arm64, linux/arm/v7… (repeat)")
	flag.StringVar(&o.Config, "config", "packaging/image/camd.yaml", "the image's camd.yaml")
	flag.StringVar(&o.CA, "ca", CAPath, "CA certificate bundle to ship (for rtsps cameras)")
	flag.StringVar(&o.Tag, "tag", "latest", "ref name of the multi-platform image in the layout")
	flag.StringVar(&o.Version, "version", "dev", "camd's version, for the labels")
	flag.StringVar(&o.Revision, "revision", "", "source revision, for the labels")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mkimage: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	var err error
	if o.Created, err = created(); err == nil {
		err = Build(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%d platforms, tag %s)\n", o.Out, len(o.Bins), o.Tag)
}
