package middleware_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocChainPositions: each middleware's place relative to next in the
// package documentation's recommended chain is the one its own
// documentation states.
func TestDocChainPositions(t *testing.T) {
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/io-tether/tether/middleware")
	require.NoError(t, err)
	funcDocs := make(map[string]string)
	for _, f := range p.Funcs {
		funcDocs[f.Name] = strings.Join(strings.Fields(f.Doc), " ")
	}

	// How a middleware's own doc states each position.
	says := map[string]*regexp.Regexp{
		"before": regexp.MustCompile(`acts before next|gives up on [^.]*without asking next`),
		"after":  regexp.MustCompile(`acts after next|passes every event to next, then`),
		"around": regexp.MustCompile(`acts around next`),
	}
	line := regexp.MustCompile(`middleware\.(\w+)\(.*// (before|after|around)\b`)
	seen := 0
	for _, l := range strings.Split(p.Doc, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen++
		name, pos := m[1], m[2]
		d, ok := funcDocs[name]
		require.True(t, ok, "the chain names %s, which the package does not export", name)
		require.True(t, says[pos].MatchString(d), "the package doc puts %s %s next; its own doc does not say so (%q)", name, pos, says[pos])
	}
	require.Equal(t, 8, seen, "middleware in the recommended chain")
}
