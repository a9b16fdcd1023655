package main

import (
	"bytes"
	"os"
	"testing"
)

// The product binary carries no test hook: no CAMD_TESTHOOK_* variable
// name is in it, so no environment can make a shipped camd hang or leak on
// purpose. The hooked build is searched the same way, so that a search
// that could never match would fail here.
func TestProductBinaryHasNoTestHooks(t *testing.T) {
	const marker = "CAMD_TESTHOOK_"
	product, err := os.ReadFile(camdBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(product, []byte(marker)); n != 0 {
		t.Fatalf("the product camd holds %q %d times; the hooks must need -tags camdtesthooks", marker, n)
	}
	hooked, err := os.ReadFile(camdHookBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(hooked, []byte(marker)) {
		t.Fatalf("the test-hooks camd lacks %q: the search above proves nothing", marker)
	}
}
