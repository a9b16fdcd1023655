package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
// wraps fs.ErrNotExist.
func ReadToken(dataDir string) (string, error) {
	p := TokenPath(dataDir)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read API token: %s is empty", p)
	}
	return tok, nil
}

// EnsureToken returns the token in dataDir, generating it (32 random bytes,
// hex) into a new 0600 file at first start. It creates dataDir (0700) if
// needed, and tightens a token file that others can read.
func EnsureToken(dataDir string) (string, error) {
	tok, err := ReadToken(dataDir)
	if err == nil {
		return tok, tightenMode(TokenPath(dataDir))
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

// tightenMode makes a token file readable by its owner only.
func tightenMode(p string) error {
	if runtime.GOOS == "windows" {
		// Windows has ACLs, not mode bits; the data dir's ACL applies.
		return nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("check API token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("check API token: %w", err)
		}
	}
	return nil
}
