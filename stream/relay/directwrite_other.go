//go:build !unix

package relay

import "errors"

// directWrite is off here: every batch goes through the session's writer.
const directWrite = false

func writeFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
