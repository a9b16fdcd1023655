package main

// The repository must explain itself to someone who has only cloned it:
// no document or comment may send the reader to a file outside it, and
// every relative link in the Markdown must reach a file (and a heading)
// that exists.

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

const modulePath = "github.com/camd/camd"

// repoRoot returns the absolute path of the repository, two levels up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module "+modulePath+"\n")) {
		t.Fatalf("%s is not the camd module's root (go.mod: %v)", root, err)
	}
	return root
}

// repoFile is one file the checks read, by its slash path from the root.
type repoFile struct {
	rel  string
	data []byte
}

// textFiles returns the repository's Go, Markdown, YAML, shell, Makefile
// and service files. .git, dist (build output) and testdata (fuzz corpora,
// clips) are not read.
func textFiles(t *testing.T, root string) []repoFile {
	t.Helper()
	var files []repoFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == ".git" || name == "dist" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch path.Ext(name) {
		case ".go", ".md", ".yaml", ".yml", ".sh", ".service", ".plist":
		default:
			if name != "Makefile" && name != "run" {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, repoFile{filepath.ToSlash(rel), b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("found only %d files under %s: the walk is broken", len(files), root)
	}
	return files
}

// inside reports whether the slash path rel (from the root, possibly with
// ".." segments) stays inside the repository; clean is rel cleaned.
func inside(rel string) (clean string, ok bool) {
	clean = path.Clean(rel)
	return clean, clean != ".." && !strings.HasPrefix(clean, "../")
}

func exists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	return err == nil
}

// pathWordRE finds path-like words; those with a ".." segment are checked.
// Absolute paths and URLs ("//host/…") are not ours to resolve.
var pathWordRE = regexp.MustCompile(`[A-Za-z0-9_.~/-]+`)

// designDocRE matches a mention of the design notes that used to live
// outside the repository; their content is docs/ARCHITECTURE.md now.
var designDocRE = regexp.MustCompile(`(?i)\bdesign\.md\b`)

// checkText reports, for text found in file rel, every path that leaves
// the repository and every mention of the old design notes.
func checkText(t *testing.T, rel, text string, line int) {
	t.Helper()
	if m := designDocRE.FindString(text); m != "" {
		t.Errorf("%s:%d names %q, which is not in the repository: point to docs/ARCHITECTURE.md and its section", rel, line, m)
	}
	for _, w := range pathWordRE.FindAllString(text, -1) {
		if strings.HasPrefix(w, "/") || !slices.Contains(strings.Split(w, "/"), "..") {
			continue
		}
		if _, ok := inside(path.Join(path.Dir(rel), w)); !ok {
			t.Errorf("%s:%d names %q, a path outside the repository", rel, line, w)
		}
	}
}

// docRefRE matches a reference from a comment to a document under docs/,
// with an optional heading anchor.
var docRefRE = regexp.MustCompile(`\bdocs/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md(?:#[A-Za-z0-9_-]+)?`)

// Nothing in the repository may name a file outside it: no "../" path that
// climbs out of the repository in any document, comment, script or string
// literal, and no mention of the design notes that once lived next to it.
// Relative paths in Go string literals (test data, the module root) must
// name files that exist, and comments that point into docs/ must name a
// document and a heading that exist.
func TestNothingNamesAPathOutsideTheRepository(t *testing.T) {
	root := repoRoot(t)
	anchors := map[string]map[string]bool{} // doc → its heading anchors
	for _, f := range textFiles(t, root) {
		if !strings.HasSuffix(f.rel, ".go") {
			for i, l := range strings.Split(string(f.data), "\n") {
				checkText(t, f.rel, l, i+1)
			}
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f.rel, f.data, parser.ParseComments)
		if err != nil {
			t.Errorf("parse %s: %v", f.rel, err)
			continue
		}
		for _, cg := range file.Comments {
			for _, c := range cg.List {
				line := fset.Position(c.Pos()).Line
				checkText(t, f.rel, c.Text, line)
				for _, ref := range docRefRE.FindAllString(c.Text, -1) {
					doc, anchor, _ := strings.Cut(ref, "#")
					if !exists(root, doc) {
						t.Errorf("%s:%d points to %s, which does not exist", f.rel, line, doc)
						continue
					}
					if anchor == "" {
						continue
					}
					if anchors[doc] == nil {
						b, _ := os.ReadFile(filepath.Join(root, doc))
						anchors[doc] = headingAnchors(string(b))
					}
					if !anchors[doc][anchor] {
						t.Errorf("%s:%d points to %s#%s, but %s has no such heading", f.rel, line, doc, anchor, doc)
					}
				}
			}
		}
		checkGoPaths(t, root, f.rel, fset, file)
	}
}

// checkGoPaths checks the relative paths a Go file spells out: a string
// literal that starts with "../" and a filepath.Join (or path.Join) whose
// leading arguments are literals starting with "..". They are relative to
// the file's package directory, where go test runs.
func checkGoPaths(t *testing.T, root, rel string, fset *token.FileSet, file *ast.File) {
	t.Helper()
	dir := path.Dir(rel)
	check := func(pos token.Pos, p string, mustExist bool) {
		clean, ok := inside(path.Join(dir, p))
		line := fset.Position(pos).Line
		switch {
		case !ok:
			t.Errorf("%s:%d uses %q, a path outside the repository", rel, line, p)
		case mustExist && !exists(root, clean):
			t.Errorf("%s:%d uses %q, but %s does not exist (moved?)", rel, line, p, clean)
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Join" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "filepath" && pkg.Name != "path" {
				return true
			}
			var lits []string
			for _, a := range n.Args {
				s, ok := stringLit(a)
				if !ok {
					break
				}
				lits = append(lits, s)
			}
			if len(lits) > 0 && lits[0] == ".." {
				check(n.Pos(), path.Join(lits...), true)
			}
		case *ast.BasicLit:
			s, ok := stringLit(n)
			if !ok || !strings.HasPrefix(s, "../") {
				return true
			}
			// "../x" may be a name a test feeds to a validator rather than
			// a path; a path to a file has a folder in it.
			rest := strings.TrimLeft(s, "./")
			check(n.Pos(), s, strings.Contains(rest, "/"))
		}
		return true
	})
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown document (and any explicit <a id=…> or name=…), outside fenced
// code.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range explicitAnchorRE.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
		h := strings.TrimLeft(l, "#")
		if len(h) == len(l) || len(l)-len(h) > 6 || !strings.HasPrefix(h, " ") {
			continue
		}
		slug := githubSlug(h)
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

var explicitAnchorRE = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)

// githubSlug is the anchor of a heading as GitHub makes it: link text
// kept, lower case, every character but letters, digits, spaces, hyphens
// and underscores dropped, spaces turned into hyphens.
func githubSlug(h string) string {
	h = mdLinkRE.ReplaceAllString(strings.TrimSpace(h), "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdLinkRE matches an inline link or image, [text](target "title").
var mdLinkRE = regexp.MustCompile(`!?\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)

// mdRefDefRE matches a reference definition, [label]: target.
var mdRefDefRE = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)

var codeSpanRE = regexp.MustCompile("`[^`]*`")

// mdLinks returns each link target of doc with its line, outside fenced
// code and code spans.
func mdLinks(doc string) (targets []string, lines []int) {
	fenced := false
	for i, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		l = codeSpanRE.ReplaceAllString(l, "")
		for _, m := range mdLinkRE.FindAllStringSubmatch(l, -1) {
			targets, lines = append(targets, m[2]), append(lines, i+1)
		}
		if m := mdRefDefRE.FindStringSubmatch(l); m != nil {
			targets, lines = append(targets, m[1]), append(lines, i+1)
		}
	}
	return targets, lines
}

// Every relative link in the repository's Markdown (README.md,
// docs/ARCHITECTURE.md, bench/…) reaches a file or folder that exists in
// the repository, and a link to a heading reaches one that exists. Every
// test docs/ARCHITECTURE.md names exists.
func TestDocLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := textFiles(t, root)
	docs := map[string]string{}
	var tests []string
	for _, f := range files {
		if strings.HasSuffix(f.rel, ".md") {
			docs[f.rel] = string(f.data)
		}
		if strings.HasSuffix(f.rel, "_test.go") {
			for _, m := range testFuncRE.FindAllSubmatch(f.data, -1) {
				tests = append(tests, string(m[1]))
			}
		}
	}
	for _, must := range []string{"README.md", "docs/ARCHITECTURE.md"} {
		if _, ok := docs[must]; !ok {
			t.Fatalf("%s is missing", must)
		}
	}
	checked := 0
	for rel, doc := range docs {
		targets, lines := mdLinks(doc)
		for i, target := range targets {
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			var clean string
			if file == "" {
				clean = rel
			} else {
				var ok bool
				joined := path.Join(path.Dir(rel), file)
				if strings.HasPrefix(file, "/") { // GitHub: from the repository's root
					joined = strings.TrimPrefix(file, "/")
				}
				if clean, ok = inside(joined); !ok {
					t.Errorf("%s:%d links to %s, outside the repository", rel, lines[i], target)
					continue
				}
				if !exists(root, clean) {
					t.Errorf("%s:%d links to %s, but %s does not exist", rel, lines[i], target, clean)
					continue
				}
			}
			checked++
			if anchor == "" {
				continue
			}
			d, ok := docs[clean]
			if !ok {
				t.Errorf("%s:%d links to a heading of %s, which is not a Markdown document", rel, lines[i], clean)
				continue
			}
			if !headingAnchors(d)[anchor] {
				t.Errorf("%s:%d links to %s, but %s has no heading with the anchor %q", rel, lines[i], target, clean, anchor)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links checked: the link parser is broken", checked)
	}
	for _, m := range testNameRE.FindAllString(docs["docs/ARCHITECTURE.md"], -1) {
		if !slices.Contains(tests, m) {
			t.Errorf("docs/ARCHITECTURE.md names %s, but no test has that name", m)
		}
	}
}

var (
	testFuncRE = regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`)
	testNameRE = regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*`)
)
