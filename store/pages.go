package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt's on-disk format (version 2, unchanged since 2014), as far as the
// checks below need it. A page starts with a 16-byte header (id u64, flags
// u16, count u16, overflow u32); a meta page's body follows it (magic u32,
// version u32, page size u32, flags u32, root bucket (root u64, sequence
// u64), freelist u64, high-water pgid u64, txid u64, checksum u64, an FNV-64a
// of the body before it). bbolt writes it in the machine's byte order.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0)
)

type boltMeta struct {
	pageSize             uint64
	root, freelist, pgid uint64
	txid                 uint64
}

// readMeta reads and validates the meta page at off.
func readMeta(f io.ReaderAt, off int64) (boltMeta, bool) {
	var b [80]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	u32 := func(o int) uint32 { return binary.NativeEndian.Uint32(b[o:]) }
	u64 := func(o int) uint64 { return binary.NativeEndian.Uint64(b[o:]) }
	h := fnv.New64a()
	_, _ = h.Write(b[16:72])
	if u32(16) != boltMagic || u32(20) != boltVersion || u64(72) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: uint64(u32(24)), root: u64(32), freelist: u64(48), pgid: u64(56), txid: u64(64)}, true
}

// checkPages checks what bbolt's Open trusts without checking: that the
// file is as long as its meta page says, and that the root and freelist
// pages it names are inside it, the freelist one really a freelist. bbolt
// panics, or faults on memory past the end of the file, where these do not
// hold. A file with no valid meta page passes: bbolt itself refuses it
// cleanly.
func checkPages(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	m0, ok0 := readMeta(f, 0)
	var m1 boltMeta
	ok1 := false
	if ok0 {
		m1, ok1 = readMeta(f, int64(m0.pageSize))
	} else {
		// Page 0 is damaged: find page 1 at the page sizes bbolt uses.
		for ps := int64(1024); ps <= 64<<10 && !ok1; ps *= 2 {
			if m1, ok1 = readMeta(f, ps); ok1 && m1.pageSize != uint64(ps) {
				ok1 = false
			}
		}
	}
	m := m0
	switch {
	case ok0 && ok1 && m1.txid > m0.txid, !ok0 && ok1:
		m = m1
	case !ok0 && !ok1:
		return nil
	}
	ps := m.pageSize
	if ps < 512 || ps > 1<<20 {
		return fmt.Errorf("%w: meta page gives page size %d", ErrDamaged, ps)
	}
	if m.pgid > uint64(fi.Size())/ps {
		return fmt.Errorf("%w: file is %d bytes, shorter than the %d pages of %d bytes its meta page counts", ErrDamaged, fi.Size(), m.pgid, ps)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Errorf("%w: root page %d is outside the file's %d pages", ErrDamaged, m.root, m.pgid)
	}
	if m.freelist == boltNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("%w: freelist page %d is outside the file's %d pages", ErrDamaged, m.freelist, m.pgid)
	}
	var h [16]byte
	if _, err := f.ReadAt(h[:], int64(m.freelist*ps)); err != nil {
		return fmt.Errorf("%w: read freelist page %d: %w", ErrDamaged, m.freelist, err)
	}
	flags, overflow := binary.NativeEndian.Uint16(h[8:]), binary.NativeEndian.Uint32(h[12:])
	if flags != boltFreelistFlag || m.freelist+uint64(overflow) >= m.pgid {
		return fmt.Errorf("%w: freelist page %d is not a freelist", ErrDamaged, m.freelist)
	}
	return nil
}

// precheck runs checkPages on an existing, non-empty file while holding
// bbolt's shared lock on it (a read-only bbolt open, which reads only the
// meta pages), so that no other camd is halfway through writing it. It
// returns bbolt's errors as they are: the caller maps them.
func precheck(path string, timeout time.Duration) error {
	var opened os.FileInfo
	ro, err := boltOpen(path, bolt.Options{ReadOnly: true, Timeout: timeout}, func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		opened = fi
		return checkExisting(fi)
	}, false)
	if replaced(path, opened) {
		if err == nil {
			_ = ro.Close()
		}
		return errReplaced
	}
	if err != nil {
		return err
	}
	defer ro.Close()
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkPages(f)
}
