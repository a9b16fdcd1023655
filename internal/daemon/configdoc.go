package daemon

import (
	"strings"

	"github.com/camd/camd/device"
)

// docWidth is where the config file's comments wrap.
const docWidth = 76

// SupervisionYAML is the supervision section of packaging/camd.yaml as
// device.SettingsTable declares it: each setting at its default, under
// its documentation and its range. A test keeps the file equal to it.
func SupervisionYAML() string {
	var b strings.Builder
	b.WriteString("supervision:\n")
	for _, st := range device.SettingsTable() {
		if st.Doc != "" {
			writeComment(&b, "  ", st.Doc)
		}
		writeComment(&b, "  ", st.Range())
		b.WriteString("  " + st.Key + ": " + device.FormatDuration(st.Default) + "\n")
	}
	return b.String()
}

// writeComment writes text as YAML comment lines at indent, wrapped at
// docWidth.
func writeComment(b *strings.Builder, indent, text string) {
	line := indent + "#"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > docWidth && len(line) > len(indent)+1 {
			b.WriteString(line + "\n")
			line = indent + "#"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}
