//go:build !linux

package storm

import "testing"

// raiseFileLimit leaves the limit as it is: ulimit -n must allow need files.
func raiseFileLimit(t *testing.T, need int) {}
