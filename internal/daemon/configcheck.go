package daemon

// The config file is checked key by key against Config's yaml tags before it
// is decoded, so that a mistake is reported in the file's terms: its line,
// the key's path and, for a typo, the key that was probably meant. The YAML
// library's own messages name Go types, which mean nothing to an operator.

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigError is a mistake at a place in the config file. It wraps
// ErrConfig.
type ConfigError struct {
	File string // the file, when LoadConfig read it
	Line int    // 1-based; 0 when the mistake has no one place
	Msg  string // one line: the key's path and what is wrong with it
}

func (e *ConfigError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func (e *ConfigError) Unwrap() error { return ErrConfig }

var (
	durationType = reflect.TypeFor[Duration]()
	yamlLineRE   = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// syntaxError turns the YAML library's message about the document into a
// ConfigError with its line, and no Go type names.
func syntaxError(err error) *ConfigError {
	msg := oneLine(err.Error())
	msg = strings.TrimPrefix(msg, "unmarshal errors:; ")
	e := &ConfigError{Msg: msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Msg = m[2]
	}
	// "cannot unmarshal !!str `x` into int" and the like.
	if i := strings.Index(e.Msg, "cannot unmarshal"); i >= 0 {
		e.Msg = "a value of the wrong kind here"
	}
	e.Msg = "not valid YAML: " + e.Msg
	return e
}

// checker walks a YAML node tree against a Go type.
type checker struct {
	seen map[seenKey]bool // alias targets already checked as a type
}

type seenKey struct {
	n *yaml.Node
	t reflect.Type
}

// checkConfigNode reports the first key in doc that Config has no field for,
// or whose value cannot be of that field's kind.
func checkConfigNode(doc *yaml.Node) *ConfigError {
	c := &checker{seen: map[seenKey]bool{}}
	return c.check(doc, reflect.TypeFor[Config](), "")
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	if n.Kind == yaml.AliasNode {
		// An alias is checked once per target and type: a document of
		// aliases of aliases must not take exponential time here.
		k := seenKey{n.Alias, t}
		if n.Alias == nil || c.seen[k] {
			return nil
		}
		c.seen[k] = true
		return c.check(n.Alias, t, path)
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return c.check(n.Content[0], t, path)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value: the default
	}
	bad := func(format string, a ...any) *ConfigError {
		return &ConfigError{Line: n.Line, Msg: fmt.Sprintf("%s: %s", path, fmt.Sprintf(format, a...))}
	}
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			return bad("want a duration like \"30s\"")
		}
		if v, err := time.ParseDuration(strings.TrimSpace(n.Value)); err != nil || v < 0 {
			return bad("%q is not a duration like \"30s\" (units: ms, s, m, h)", n.Value)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.check(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				return &ConfigError{Line: n.Line, Msg: "the file must be a mapping of keys (like \"log:\", \"api:\")"}
			}
			return bad("want a section of keys (%s), not %s", strings.Join(structKeys(t), ", "), kindName(n))
		}
		keys := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if k.Kind != yaml.ScalarNode || !ok {
				msg := fmt.Sprintf("unknown key %q", join(path, k.Value))
				if s := suggest(k.Value, keys); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", join(path, s))
				} else if p := elsewhere(k.Value); p != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", p)
				} else if path == "" {
					msg += " (the sections are " + strings.Join(keys, ", ") + ")"
				} else {
					msg += " (" + path + " has " + strings.Join(keys, ", ") + ")"
				}
				return &ConfigError{Line: k.Line, Msg: msg}
			}
			if err := c.check(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("want a mapping of names, not %s", kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := c.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Bool:
		// yes, no, on and off are YAML 1.1 booleans, which the decoder
		// still takes for a bool.
		yes11 := map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!bool" && !yes11[strings.ToLower(n.Value)]) {
			return bad("%s is not true or false", valueName(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return bad("%s is not a whole number", valueName(n))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return bad("want a text value, not %s", kindName(n))
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// kindName says what a node is, in YAML's terms.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return valueName(n)
}

func valueName(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return kindName(n)
}

// structKeys lists the keys a struct type takes, in field order.
func structKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := yamlName(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == key && key != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// elsewhere returns the full path of the one key named key in another
// section ("stall_timeout" at the top is "supervision.stall_timeout").
func elsewhere(key string) string {
	var found []string
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		if depth > 3 {
			return
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			if name == key && path != "" {
				found = append(found, join(path, name))
			}
			walk(f.Type, join(path, name), depth+1)
		}
	}
	walk(reflect.TypeFor[Config](), "", 0)
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

// suggest returns the key in keys closest to typed, if it is close enough to
// be a typo of it.
func suggest(typed string, keys []string) string {
	best, bestD := "", -1
	for _, k := range keys {
		d := levenshtein(strings.ToLower(typed), k)
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := max(1, min(3, len(typed)/3))
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// levenshtein is the edit distance between a and b (insertions, deletions
// and substitutions of bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
