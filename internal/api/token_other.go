//go:build !unix

package api

import "os"

// openNoFollow opens p for reading; callers check that it is a regular
// file (tightenMode does nothing off Unix).
func openNoFollow(p string) (*os.File, error) { return os.Open(p) }
