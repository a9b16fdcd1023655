package daemon

import "os"

// fileOwner is unused on Windows, where prepareDataDir checks no modes.
func fileOwner(os.FileInfo) int { return -1 }
