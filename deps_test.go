package tether_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The core, the dialers but quic, the middleware and sessions import only
// the standard library (and packages of this module); only package quic
// imports quic-go.
func TestDependencies(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		require.NoError(t, err, "go list %s: %s", pkg, out)
		return strings.Fields(string(out))
	}
	const module = "github.com/io-tether/tether"
	for _, pkg := range []string{module, module + "/tcp", module + "/tls", module + "/dialers", module + "/middleware", module + "/session"} {
		for _, d := range deps(pkg) {
			require.True(t, d == module || strings.HasPrefix(d, module+"/"),
				"%s depends on %s, outside the standard library", pkg, d)
		}
	}
	require.Contains(t, deps(module+"/quic"), "github.com/quic-go/quic-go")
}
