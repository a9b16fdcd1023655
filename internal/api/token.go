package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// TokenFile is the name of the token file in the data dir.
const TokenFile = "api.token"

// TokenPath returns the token file's path in dataDir.
func TokenPath(dataDir string) string { return filepath.Join(dataDir, TokenFile) }

// ReadToken reads the token from dataDir. A missing file is an error that
// wraps fs.ErrNotExist. The file must be a regular file (not a symlink, so
// that nobody can point camd at a file of their choosing) holding at least
// MinTokenLen bytes.
func ReadToken(dataDir string) (string, error) {
	tok, _, err := readToken(dataDir)
	return tok, err
}

// maxTokenFileBytes bounds what is read: a token file is one short line.
const maxTokenFileBytes = 4096

// readToken reads the token and returns its file's mode bits.
func readToken(dataDir string) (string, fs.FileMode, error) {
	p := TokenPath(dataDir)
	li, err := os.Lstat(p)
	if err != nil {
		return "", 0, fmt.Errorf("read API token: %w", err)
	}
	if !li.Mode().IsRegular() {
		return "", 0, fmt.Errorf("read API token: %s is %s, not a regular file; camd refuses it (remove it to have a new token made)", p, fileKind(li.Mode()))
	}
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("read API token: %w", err)
	}
	defer f.Close()
	// The name could have been swapped for a symlink since the Lstat: the
	// file opened must be the one checked.
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("read API token: %w", err)
	}
	if !os.SameFile(li, fi) {
		return "", 0, fmt.Errorf("read API token: %s changed while it was read; camd refuses it", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("read API token: %w", err)
	}
	if len(b) > maxTokenFileBytes {
		return "", 0, fmt.Errorf("read API token: %s is larger than %d bytes", p, maxTokenFileBytes)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", 0, fmt.Errorf("read API token: %s is empty", p)
	}
	if len(tok) < MinTokenLen {
		return "", 0, fmt.Errorf("read API token: %s holds %d bytes: %w (remove the file to have a new one made)", p, len(tok), ErrTokenTooShort)
	}
	return tok, fi.Mode(), nil
}

// fileKind names what a non-regular file is, for an error.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// EnsureToken returns the token in dataDir, generating it (32 random bytes,
// hex) into a new 0600 file at first start. It creates dataDir (0700) if
// needed, and tightens a token file that others can read.
func EnsureToken(dataDir string) (string, error) {
	tok, mode, err := readToken(dataDir)
	if err == nil {
		return tok, tightenMode(TokenPath(dataDir), mode)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	tok = hex.EncodeToString(b[:])
	p := TokenPath(dataDir)
	// O_EXCL: if another process wrote the file meanwhile, use its token
	// rather than overwrite one that a CLI may already have read.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ReadToken(dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(p)
		return "", fmt.Errorf("create API token: %w", werr)
	}
	return tok, nil
}

// tightenMode makes a token file readable by its owner only. It opens the
// file without following a symlink, so that only the token file itself is
// ever changed.
func tightenMode(p string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" {
		// Windows has ACLs, not mode bits; the data dir's ACL applies.
		return nil
	}
	if mode.Perm()&0o077 == 0 {
		return nil
	}
	f, err := openNoFollow(p)
	if err != nil {
		return fmt.Errorf("check API token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check API token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("check API token: %s is not a regular file", p)
	}
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("check API token: %w", err)
	}
	return nil
}
