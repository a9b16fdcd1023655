package stream

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ErrCertificate is returned (wrapped) by Read when an rtsps:// camera's
// certificate is not trusted: it does not verify against the system's roots
// or the camera's CA, or it does not match the pinned fingerprint. The
// message gives the certificate's SHA-256 fingerprint, so that an operator
// can pin it.
var ErrCertificate = errors.New("camera certificate not trusted")

// CameraTLS says how an rtsps:// camera's certificate is trusted. The zero
// value verifies it against the system's roots and the URL's host name, as
// a browser would; cameras rarely pass that (self-signed, a common name and
// no address in the certificate), so each camera can say what it trusts.
type CameraTLS struct {
	// Fingerprint pins the camera's certificate by the SHA-256 of its DER
	// bytes (hex, colons and case ignored, an optional "sha256:" prefix):
	// that certificate and no other is accepted, whatever its names and
	// dates. It is what a camera's self-signed certificate needs.
	Fingerprint string `json:"tls_fingerprint,omitempty"`
	// CAFile is a PEM file of CA certificates the camera's chain must
	// verify against. The host name is not checked: cameras' certificates
	// seldom name the address they are reached at.
	CAFile string `json:"tls_ca,omitempty"`
	// Insecure accepts any certificate. The connection is encrypted but
	// not authenticated.
	Insecure bool `json:"tls_insecure,omitempty"`
}

// ParseFingerprint normalises a SHA-256 fingerprint to 64 lower-case hex
// digits.
func ParseFingerprint(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "sha256:")
	t = strings.TrimPrefix(t, "sha256 fingerprint=")
	t = strings.ReplaceAll(t, ":", "")
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("tls_fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", s)
	}
	return t, nil
}

// Fingerprint formats a certificate's SHA-256 fingerprint as openssl
// prints it: upper-case hex pairs joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Validate checks the settings without connecting: the fingerprint's form
// and that the CA file holds certificates.
func (t CameraTLS) Validate() error {
	n := 0
	if t.Fingerprint != "" {
		n++
		if _, err := ParseFingerprint(t.Fingerprint); err != nil {
			return err
		}
	}
	if t.CAFile != "" {
		n++
		if _, err := loadCA(t.CAFile); err != nil {
			return err
		}
	}
	if t.Insecure {
		n++
	}
	if n > 1 {
		return errors.New("set only one of tls_fingerprint, tls_ca and tls_insecure")
	}
	return nil
}

// IsZero reports whether nothing is set.
func (t CameraTLS) IsZero() bool { return t == CameraTLS{} }

func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls_ca: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// config builds the client's TLS configuration for host. camd verifies the
// certificate itself in every case, so that a failure can name the
// certificate's fingerprint.
func (t CameraTLS) config(host string) (*tls.Config, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	switch {
	case t.Insecure:
		return cfg, nil
	case t.Fingerprint != "":
		want, err := ParseFingerprint(t.Fingerprint)
		if err != nil {
			return nil, err
		}
		wantB, _ := hex.DecodeString(want)
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			got := sha256.Sum256(leaf.Raw)
			if subtle.ConstantTimeCompare(got[:], wantB) != 1 {
				return fmt.Errorf("%w: its SHA-256 fingerprint %s is not the pinned tls_fingerprint", ErrCertificate, Fingerprint(leaf.Raw))
			}
			return nil
		}
		return cfg, nil
	}
	var roots *x509.CertPool // nil: the system's
	name := host
	if t.CAFile != "" {
		pool, err := loadCA(t.CAFile)
		if err != nil {
			return nil, err
		}
		roots, name = pool, ""
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
		if err != nil {
			return fmt.Errorf("%w (%v); its SHA-256 fingerprint is %s: pin it with tls_fingerprint (camd camera add --tls-fingerprint %s)",
				ErrCertificate, err, Fingerprint(leaf.Raw), Fingerprint(leaf.Raw))
		}
		return nil
	}
	return cfg, nil
}
