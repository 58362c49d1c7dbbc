package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	got := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out.String(), "ADDR")
	require.Equal(t, `event: connected ADDR
event: disconnected ADDR
event: reconnected ADDR
read: foobar
disconnect reason: EOF
`, got)
}
