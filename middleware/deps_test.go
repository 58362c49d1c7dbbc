package middleware_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStandardLibraryOnly: package middleware imports only the standard
// library and this module's own packages, internal/backoff among them.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/io-tether/tether/middleware").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	require.Contains(t, strings.Fields(string(out)), "github.com/io-tether/tether/internal/backoff",
		"Backoff shares the default policy's arithmetic")
	for _, p := range strings.Fields(string(out)) {
		require.True(t, p == "github.com/io-tether/tether" || strings.HasPrefix(p, "github.com/io-tether/tether/"),
			"package middleware depends on %s, outside the standard library", p)
	}
}
