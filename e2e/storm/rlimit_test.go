//go:build linux

package storm

import (
	"syscall"
	"testing"
)

// raiseFileLimit makes sure the process may open need files: it raises the
// soft limit, and the hard one when it may (as root). It fails the test,
// saying why, when it cannot.
func raiseFileLimit(t *testing.T, need int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= uint64(need) {
		return
	}
	want := lim
	want.Cur = uint64(need)
	if want.Max < want.Cur {
		want.Max = want.Cur
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Fatalf("need %d open files, the limit is %d/%d and raising it failed: %v (run as root or raise ulimit -n)",
			need, lim.Cur, lim.Max, err)
	}
}
