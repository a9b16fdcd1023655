// Command gentable writes the camera state table (device.StateTableMarkdown)
// into a Markdown document between its markers, leaving the rest of the
// document as it is: other sections are written by hand. go generate
// ./device runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/camd/camd/device"
)

const (
	begin = "<!-- BEGIN GENERATED STATE TABLE -->\n"
	end   = "<!-- END GENERATED STATE TABLE -->"
)

func main() {
	doc := flag.String("doc", "", "the Markdown document to update")
	flag.Parse()
	if err := update(*doc); err != nil {
		fmt.Fprintln(os.Stderr, "gentable:", err)
		os.Exit(1)
	}
}

func update(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, ok := strings.Cut(string(old), begin)
	if !ok {
		return fmt.Errorf("%s: no line %q", path, strings.TrimSpace(begin))
	}
	_, after, ok := strings.Cut(rest, end)
	if !ok {
		return fmt.Errorf("%s: no %q after the begin marker", path, end)
	}
	doc := before + begin + device.StateTableMarkdown() + end + after
	if doc == string(old) {
		return nil
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
