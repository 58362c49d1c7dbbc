//go:build linux

package deadpeer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Names of what a run creates. Each name carries the PID of the test process,
// so that parallel runs do not collide and a later run can tell a leftover of
// a dead process (which it deletes) from a live run's.
const (
	nsPrefix    = "tether-dp-" // the namespace: tether-dp-PID
	linkPrefix  = "tdp"        // the veth ends: tdpPIDh (host side), tdpPIDn (namespace side)
	tablePrefix = "tetherdp"   // the nftables table in the namespace: tetherdpPID
)

// The /30s of a run are the 64 in 10.213.7.0/24, a range private to this
// machine: it exists only on the veth pairs these tests create and delete.
// A run holds a lock on its /30's file for its life (released by the kernel
// if it dies), so that parallel runs take different ones; the first, used
// when nothing else runs, is 10.213.7.1 (host) ↔ 10.213.7.2 (namespace).
const slots = 64

// cmdTimeout bounds each ip or nft command and the child that makes the
// listeners.
const cmdTimeout = 10 * time.Second

// listenEnv, when set to "ADDR N", makes TestMain listen N times on ADDR
// (port 0) and hand the listeners to its parent over file descriptor 3: the
// test binary runs that way under ip netns exec, so that the listeners are
// sockets of the namespace (see serveListeners).
const listenEnv = "TETHER_DEADPEER_LISTEN"

// netns is a network namespace joined to the root namespace by a veth pair on
// a /30, with an nftables table inside that drops every TCP segment to or
// from the ports in its set "blackholed": a true blackhole, which sends
// neither a reset nor an ICMP error, and which the client's kernel cannot
// see past.
type netns struct {
	ip, nft  string // the commands
	name     string // the namespace
	hostLink string // the veth end in the root namespace
	nsLink   string // the veth end in the namespace
	table    string // the nftables table in the namespace
	hostIP   string // the address of hostLink
	peerIP   string // the address of nsLink: the servers listen on it
	slot     *os.File
}

// tools looks for the commands the tests need and reports what is missing.
func tools() (ip, nft string, missing []string) {
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d; network namespaces, veth pairs and nftables need root)", os.Geteuid()))
	}
	ip, nft = lookTool("ip"), lookTool("nft")
	if ip == "" {
		missing = append(missing, "the ip command (iproute2: apt-get install iproute2) in $PATH, /usr/sbin or /sbin")
	}
	if nft == "" {
		missing = append(missing, "the nft command (nftables: apt-get install nftables) in $PATH, /usr/sbin or /sbin")
	}
	return ip, nft, missing
}

// lookTool finds the command name in $PATH or in the sbin directories, which
// a non-login shell's $PATH may lack; "" if it is nowhere.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// newNetns makes the namespace, the veth pair and the nftables table, and
// deletes them at the end of t. It skips t, saying why, when root, ip or nft
// is missing; any other failure fails t.
func newNetns(t *testing.T) *netns {
	t.Helper()
	ip, nft, missing := tools()
	if len(missing) > 0 {
		t.Skipf("deadpeer: cannot run without %s", strings.Join(missing, "; "))
	}
	pid := os.Getpid()
	n := &netns{
		ip:       ip,
		nft:      nft,
		name:     fmt.Sprintf("%s%d", nsPrefix, pid),
		hostLink: fmt.Sprintf("%s%dh", linkPrefix, pid),
		nsLink:   fmt.Sprintf("%s%dn", linkPrefix, pid),
		table:    fmt.Sprintf("%s%d", tablePrefix, pid),
	}
	n.sweep(t)
	n.takeSlot(t)
	t.Cleanup(func() { n.teardown(t) }) // before anything exists: a half-made setup is deleted too

	must(t, n.ip, "netns", "add", n.name)
	must(t, n.ip, "link", "add", n.hostLink, "type", "veth", "peer", "name", n.nsLink)
	must(t, n.ip, "link", "set", n.nsLink, "netns", n.name)
	must(t, n.ip, "addr", "add", n.hostIP+"/30", "dev", n.hostLink)
	must(t, n.ip, "link", "set", n.hostLink, "up")
	must(t, n.ip, "-n", n.name, "addr", "add", n.peerIP+"/30", "dev", n.nsLink)
	must(t, n.ip, "-n", n.name, "link", "set", n.nsLink, "up")
	must(t, n.ip, "-n", n.name, "link", "set", "lo", "up")
	ruleset := fmt.Sprintf(`table inet %s {
	set blackholed { type inet_service; }
	chain in { type filter hook input priority 0; policy accept; tcp dport @blackholed drop; }
	chain out { type filter hook output priority 0; policy accept; tcp sport @blackholed drop; }
}
`, n.table)
	if out, err := run(ruleset, n.ip, "netns", "exec", n.name, n.nft, "-f", "-"); err != nil {
		t.Fatalf("loading the nftables table: %v\n%s", err, out)
	}
	return n
}

// takeSlot locks a free /30 for the run, or fails t when all 64 are taken.
func (n *netns) takeSlot(t *testing.T) {
	t.Helper()
	out, err := run("", n.ip, "-o", "-4", "addr", "show")
	require.NoError(t, err, "ip -o -4 addr show: %s", out)
	for slot := range slots {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("tether-deadpeer-slot%d.lock", slot)), os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // a live run holds it
			continue
		}
		host, peer := fmt.Sprintf("10.213.7.%d", 4*slot+1), fmt.Sprintf("10.213.7.%d", 4*slot+2)
		if strings.Contains(out, " "+host+"/") || strings.Contains(out, " "+peer+"/") {
			f.Close() // something that is not ours uses it
			continue
		}
		n.slot, n.hostIP, n.peerIP = f, host, peer
		return
	}
	t.Fatalf("all %d /30s of 10.213.7.0/24 are in use", slots)
}

// sweep deletes what a run that is no longer alive left behind (a crashed
// run, or an earlier one with this PID): its namespace, with its table and
// the veth end inside, and its host veth end.
func (n *netns) sweep(t *testing.T) {
	t.Helper()
	stale := func(name, prefix string) bool {
		s, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return false
		}
		s = strings.TrimRight(s, "hn")
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return false
		}
		if pid == os.Getpid() {
			return true // not made yet by this process: an older run's
		}
		err = syscall.Kill(pid, 0)
		return err == syscall.ESRCH
	}
	out, err := run("", n.ip, "netns", "list")
	require.NoError(t, err, "ip netns list: %s", out)
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || !stale(f[0], nsPrefix) {
			continue
		}
		t.Logf("deleting the leftover namespace %s", f[0])
		pid := strings.TrimPrefix(f[0], nsPrefix)
		run("", n.ip, "netns", "exec", f[0], n.nft, "delete", "table", "inet", tablePrefix+pid)
		run("", n.ip, "link", "del", linkPrefix+pid+"h")
		if out, err := run("", n.ip, "netns", "del", f[0]); err != nil {
			t.Fatalf("deleting the leftover namespace %s: %v\n%s", f[0], err, out)
		}
	}
	out, err = run("", n.ip, "-o", "link", "show")
	require.NoError(t, err, "ip -o link show: %s", out)
	for line := range strings.Lines(out) {
		f := strings.Fields(line) // "12: tdp123h@if11: <...> ..."
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if !stale(name, linkPrefix) {
			continue
		}
		t.Logf("deleting the leftover veth %s", name)
		if out, err := run("", n.ip, "link", "del", name); err != nil {
			t.Fatalf("deleting the leftover veth %s: %v\n%s", name, err, out)
		}
	}
}

// teardown deletes the table, the veth pair and the namespace, whatever part
// of them exists, checks that they are gone, and releases the /30.
func (n *netns) teardown(t *testing.T) {
	run("", n.ip, "netns", "exec", n.name, n.nft, "delete", "table", "inet", n.table)
	run("", n.ip, "link", "del", n.hostLink) // deletes both ends
	run("", n.ip, "netns", "del", n.name)
	if out, err := run("", n.ip, "netns", "list"); err != nil || listed(out, n.name) {
		t.Errorf("the namespace %s is still there after the cleanup (%v):\n%s", n.name, err, out)
	}
	if _, err := run("", n.ip, "link", "show", n.hostLink); err == nil {
		t.Errorf("the veth %s is still there after the cleanup", n.hostLink)
	}
	if n.slot != nil {
		n.slot.Close()
	}
}

// listed reports whether a line of out begins with the field s.
func listed(out, s string) bool {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == s {
			return true
		}
	}
	return false
}

// blackhole drops every segment to and from the server port of addr, in
// both directions, from now on (on) or lets them through again (off).
func (n *netns) blackhole(t *testing.T, addr string, on bool) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	op := "add"
	if !on {
		op = "delete"
	}
	must(t, n.ip, "netns", "exec", n.name, n.nft, op, "element", "inet", n.table, "blackholed", "{ "+port+" }")
}

// listeners returns count TCP listeners on the namespace's address. A
// socket belongs to the namespace of the process that made it, for life, and
// the standard library cannot move a goroutine into a namespace (syscall has
// no Setns): so a child, the test binary run under ip netns exec, makes them
// and passes them back over a Unix socket (SCM_RIGHTS), then exits. The
// servers then run in this process, and the blackhole applies to them.
func (n *netns) listeners(t *testing.T, count int) []net.Listener {
	t.Helper()
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	mine, theirs := os.NewFile(uintptr(pair[0]), "deadpeer-parent"), os.NewFile(uintptr(pair[1]), "deadpeer-child")
	uc, err := net.FileConn(mine)
	mine.Close()
	require.NoError(t, err)
	defer uc.Close()

	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.ip, "netns", "exec", n.name, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", listenEnv, n.peerIP, count))
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the child
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	theirs.Close()
	require.NoError(t, err)

	uc.SetReadDeadline(time.Now().Add(cmdTimeout))
	buf, oob := make([]byte, 16), make([]byte, syscall.CmsgSpace(4*count))
	_, oobn, _, _, rerr := uc.(*net.UnixConn).ReadMsgUnix(buf, oob)
	werr := cmd.Wait()
	require.NoError(t, rerr, "receiving the listeners from the child: %s", out.Bytes())
	require.NoError(t, werr, "the child that makes the listeners: %s", out.Bytes())
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	require.Len(t, msgs, 1, "control messages from the child")
	fds, err := syscall.ParseUnixRights(&msgs[0])
	require.NoError(t, err)
	require.Len(t, fds, count, "listeners from the child")
	lns := make([]net.Listener, 0, count)
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "deadpeer-listener")
		ln, err := net.FileListener(f) // a dup of f
		f.Close()
		require.NoError(t, err)
		lns = append(lns, ln)
	}
	return lns
}

// serveListeners is the child's side of listeners: spec is "ADDR N".
func serveListeners(spec string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "deadpeer child:", err)
		return 1
	}
	addr, ns, ok := strings.Cut(spec, " ")
	count, err := strconv.Atoi(ns)
	if !ok || err != nil || count <= 0 {
		return fail(fmt.Errorf("bad %s %q", listenEnv, spec))
	}
	parent, err := net.FileConn(os.NewFile(3, "deadpeer-parent"))
	if err != nil {
		return fail(err)
	}
	defer parent.Close()
	fds := make([]int, 0, count)
	for range count {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return fail(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			return fail(err)
		}
		fds = append(fds, int(f.Fd()))
	}
	if _, _, err := parent.(*net.UnixConn).WriteMsgUnix([]byte("ok"), syscall.UnixRights(fds...), nil); err != nil {
		return fail(err)
	}
	return 0
}

// must runs a command and fails t if it fails.
func must(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := run("", name, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// run runs a command with stdin, for up to cmdTimeout, and returns its
// combined output.
func run(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
