package faultproxy_test

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// datagram is what a udpUpstream received, and from whom.
type datagram struct {
	from netip.AddrPort
	data string
}

// udpUpstream is a UDP server on loopback that records what it receives and,
// when echo is set, sends it back prefixed with its name.
type udpUpstream struct {
	name string
	conn *net.UDPConn
	echo bool
	done chan struct{}

	mu   sync.Mutex
	got  []datagram
	wake chan struct{} // closed and replaced at each datagram
}

func startUDPUpstream(t *testing.T, network, addr, name string, echo bool) *udpUpstream {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	require.NoError(t, err)
	c, err := net.ListenUDP(network, ua)
	require.NoError(t, err)
	u := &udpUpstream{name: name, conn: c, echo: echo, done: make(chan struct{}), wake: make(chan struct{})}
	go func() {
		defer close(u.done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.got = append(u.got, datagram{from, string(buf[:n])})
			close(u.wake)
			u.wake = make(chan struct{})
			u.mu.Unlock()
			if u.echo {
				c.WriteToUDPAddrPort(append([]byte(u.name+":"), buf[:n]...), from)
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-u.done
	})
	return u
}

func (u *udpUpstream) addr() string { return u.conn.LocalAddr().String() }

func (u *udpUpstream) received() []datagram {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]datagram(nil), u.got...)
}

// waitN waits until the upstream has received n datagrams in all.
func (u *udpUpstream) waitN(t *testing.T, n int) []datagram {
	t.Helper()
	deadline := time.After(long)
	for {
		u.mu.Lock()
		got, wake := append([]datagram(nil), u.got...), u.wake
		u.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("upstream %s: %d datagrams within %v, want %d", u.name, len(got), long, n)
		}
	}
}

func startRelay(t *testing.T, upstream string, seed uint64) *faultproxy.UDPRelay {
	t.Helper()
	r, err := faultproxy.NewUDPRelay(upstream, seed)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// startUDPPath starts an upstream "u" that echoes, a relay in front of it,
// and a client, which makes one round trip ("before") through them.
func startUDPPath(t *testing.T) (*udpUpstream, *faultproxy.UDPRelay, *udpClient) {
	t.Helper()
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r := startRelay(t, u.addr(), 1)
	c := newUDPClient(t, r)
	c.send(t, "before")
	c.expect(t, "u:before")
	return u, r, c
}

// udpClient is a UDP socket that talks to a relay.
type udpClient struct {
	conn  *net.UDPConn
	relay netip.AddrPort
}

func newUDPClient(t *testing.T, r *faultproxy.UDPRelay) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &udpClient{conn: c, relay: netip.MustParseAddrPort(r.Addr())}
}

func (c *udpClient) addr() netip.AddrPort {
	return netip.MustParseAddrPort(c.conn.LocalAddr().String())
}

func (c *udpClient) send(t *testing.T, s string) {
	t.Helper()
	_, err := c.conn.WriteToUDPAddrPort([]byte(s), c.relay)
	require.NoError(t, err)
}

// recv returns the next datagram, waiting up to d, and where it came from.
func (c *udpClient) recv(d time.Duration) (string, netip.AddrPort, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	n, from, err := c.conn.ReadFromUDPAddrPort(buf)
	return string(buf[:n]), from, err
}

// expect waits for the next datagram and checks it.
func (c *udpClient) expect(t *testing.T, want string) {
	t.Helper()
	got, from, err := c.recv(long)
	require.NoError(t, err, "client: no datagram within %v, want %q", long, want)
	require.Equal(t, want, got)
	require.Equal(t, c.relay, from, "the answer comes from the relay's address")
}

// expectNothing checks that no datagram arrives within d: the proof that
// something was dropped is that it does not come.
func (c *udpClient) expectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	got, _, err := c.recv(d)
	require.True(t, isTimeout(err), "client: got %q (%v), want nothing within %v", got, err, d)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestUDPForward(t *testing.T) {
	t.Parallel()
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r := startRelay(t, u.addr(), 1)
	require.Equal(t, u.addr(), r.Upstream())
	require.Equal(t, uint64(1), r.Seed())
	host, _, err := net.SplitHostPort(r.Addr())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)

	a, b := newUDPClient(t, r), newUDPClient(t, r)
	a.send(t, "one")
	a.expect(t, "u:one")
	b.send(t, "two")
	b.expect(t, "u:two")
	a.send(t, "three")
	a.expect(t, "u:three")

	// The server sees one peer per client, neither of them the client
	// itself: the relay's session sockets.
	got := u.received()
	require.Len(t, got, 3)
	require.Equal(t, got[0].from, got[2].from, "one client, one session")
	require.NotEqual(t, got[0].from, got[1].from, "two clients, two sessions")
	for _, d := range got {
		require.NotContains(t, []netip.AddrPort{a.addr(), b.addr()}, d.from)
		require.True(t, d.from.Addr().IsLoopback())
	}
	require.Equal(t, 2, r.Sessions())
	eventually(t, func() bool { return r.Stats().Down == 3 }, "Stats().Down = %d, want 3", r.Stats().Down)
	require.Equal(t, faultproxy.UDPStats{Sessions: 2, Up: 3, Down: 3, BytesUp: 11, BytesDown: 17}, r.Stats())

	// A large datagram passes whole.
	big := string(make([]byte, 60000))
	a.send(t, big)
	a.expect(t, "u:"+big)
}

// The loss drops about the fraction it says, and which datagrams it drops
// follows from the seed alone.
func TestUDPLossDeterministic(t *testing.T) {
	t.Parallel()
	const n = 400
	// dropped returns the datagrams (by number) that a relay with seed lost
	// on their way up, with 30 % loss up and a quarter of the way down.
	dropped := func(seed uint64) map[int]bool {
		u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", false)
		r := startRelay(t, u.addr(), seed)
		require.NoError(t, r.SetLoss(faultproxy.Loss{Up: 0.3, Down: 0.25}))
		require.Equal(t, faultproxy.Loss{Up: 0.3, Down: 0.25}, r.Loss())
		c := newUDPClient(t, r)
		for i := range n {
			c.send(t, strconv.Itoa(i))
			if i%50 == 49 { // in batches, so that no socket buffer overflows
				eventually(t, func() bool { st := r.Stats(); return st.Up+st.DroppedUp == int64(i+1) },
					"the relay did not handle %d datagrams", i+1)
			}
		}
		st := r.Stats()
		got := u.waitN(t, int(st.Up))
		lost := make(map[int]bool, n)
		for i := range n {
			lost[i] = true
		}
		for i, d := range got {
			k, err := strconv.Atoi(d.data)
			require.NoError(t, err)
			require.True(t, lost[k], "datagram %d arrived twice", k)
			if i > 0 {
				prev, _ := strconv.Atoi(got[i-1].data)
				require.Less(t, prev, k, "datagrams out of order")
			}
			delete(lost, k)
		}
		require.Equal(t, int(st.DroppedUp), len(lost))
		frac := float64(len(lost)) / n
		require.InDelta(t, 0.3, frac, 0.1, "dropped %d of %d datagrams with a loss of 0.3", len(lost), n)
		t.Logf("seed %d: dropped %d of %d (%.1f %%)", seed, len(lost), n, 100*frac)
		return lost
	}
	a, b, other := dropped(7), dropped(7), dropped(8)
	require.Equal(t, a, b, "the same seed drops the same datagrams")
	require.NotEqual(t, a, other, "another seed drops other datagrams")
}

// A loss in one direction leaves the other alone.
func TestUDPLossOneWay(t *testing.T) {
	t.Parallel()
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r := startRelay(t, u.addr(), 1)
	c := newUDPClient(t, r)

	require.NoError(t, r.SetLoss(faultproxy.Loss{Down: 1}))
	c.send(t, "up")
	u.waitN(t, 1) // it went up
	eventually(t, func() bool { return r.Stats().DroppedDown == 1 }, "the answer was not dropped")
	c.expectNothing(t, 50*time.Millisecond)

	require.NoError(t, r.SetLoss(faultproxy.Loss{Up: 1}))
	c.send(t, "lost")
	eventually(t, func() bool { return r.Stats().DroppedUp == 1 }, "the datagram was not dropped")
	require.Len(t, u.received(), 1, "a datagram passed a loss of 1")

	r.Heal()
	require.Equal(t, faultproxy.Loss{}, r.Loss())
	c.send(t, "again")
	c.expect(t, "u:again")
	st := r.Stats()
	require.Equal(t, faultproxy.UDPStats{Sessions: 1, Up: 2, Down: 1, BytesUp: 7, BytesDown: 7,
		DroppedUp: 1, DroppedDown: 1, Faults: 2}, st)
}

// LoseFor drops everything for a while, then heals by itself; its channel
// says when.
func TestUDPLoseFor(t *testing.T) {
	t.Parallel()
	u, r, c := startUDPPath(t)

	// (Long enough that the relay, on a busy machine, handles the datagram
	// sent during it before it ends.)
	const d = time.Second
	start := time.Now()
	healed, err := r.LoseFor(faultproxy.BothWays(1), d)
	require.NoError(t, err)
	c.send(t, "during")
	eventually(t, func() bool { return r.Stats().DroppedUp == 1 }, "the datagram was not dropped")
	select {
	case <-healed:
	case <-time.After(long):
		t.Fatalf("LoseFor(%v) did not end within %v", d, long)
	}
	require.GreaterOrEqual(t, time.Since(start), d)
	require.Equal(t, faultproxy.Loss{}, r.Loss())
	c.send(t, "after")
	c.expect(t, "u:after")
	require.Len(t, u.received(), 2)
}

// A LoseFor ends as soon as another loss replaces it, and its timer does
// not undo the new one.
func TestUDPLoseForReplaced(t *testing.T) {
	t.Parallel()
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r := startRelay(t, u.addr(), 1)

	first, err := r.LoseFor(faultproxy.BothWays(1), 20*time.Millisecond)
	require.NoError(t, err)
	second, err := r.LoseFor(faultproxy.BothWays(0.5), time.Hour)
	require.NoError(t, err)
	transporttest.WaitClosed(t, first, "the replaced LoseFor's channel")
	time.Sleep(60 * time.Millisecond) // past the first one's end: nothing may happen
	require.Equal(t, faultproxy.BothWays(0.5), r.Loss(), "the first LoseFor's timer healed the second")
	select {
	case <-second:
		t.Fatal("the second LoseFor ended early")
	default:
	}

	require.NoError(t, r.SetLoss(faultproxy.BothWays(0.1)))
	transporttest.WaitClosed(t, second, "a LoseFor's channel after SetLoss")
	third, err := r.LoseFor(faultproxy.BothWays(1), time.Hour)
	require.NoError(t, err)
	r.Heal()
	transporttest.WaitClosed(t, third, "a LoseFor's channel after Heal")
	fourth, err := r.LoseFor(faultproxy.BothWays(1), time.Hour)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	transporttest.WaitClosed(t, fourth, "a LoseFor's channel after Close")
}

// A blackhole drops every datagram, both ways and new clients', until it is
// turned off.
func TestUDPBlackhole(t *testing.T) {
	t.Parallel()
	u, r, a := startUDPPath(t)

	r.Blackhole(true)
	r.Blackhole(true) // one fault
	b := newUDPClient(t, r)
	a.send(t, "a")
	b.send(t, "b")
	eventually(t, func() bool { return r.Stats().DroppedUp == 2 }, "the datagrams were not dropped")
	require.Len(t, u.received(), 1)
	require.Equal(t, 2, r.Sessions(), "a new client has a session all the same")

	r.Blackhole(false)
	a.send(t, "a2")
	a.expect(t, "u:a2")
	b.send(t, "b2")
	b.expect(t, "u:b2")
	require.Equal(t, 1, r.Stats().Faults)

	// The server's datagrams are dropped too.
	r.Blackhole(true)
	_, err := u.conn.WriteToUDPAddrPort([]byte("push"), u.received()[1].from)
	require.NoError(t, err)
	eventually(t, func() bool { return r.Stats().DroppedDown == 1 }, "the server's datagram was not dropped")
	a.expectNothing(t, 50*time.Millisecond)
	r.Heal()
	a.send(t, "a3")
	a.expect(t, "u:a3")
}

// After SetUpstream, the live sessions forward to the new address, from the
// same sockets, and the old address's datagrams are dropped.
func TestUDPSetUpstream(t *testing.T) {
	t.Parallel()
	old := startUDPUpstream(t, "udp4", "127.0.0.1:0", "old", true)
	next := startUDPUpstream(t, "udp4", "127.0.0.1:0", "new", true)
	r := startRelay(t, old.addr(), 1)
	c := newUDPClient(t, r)
	c.send(t, "one")
	c.expect(t, "old:one")

	require.NoError(t, r.SetUpstream(next.addr()))
	require.Equal(t, next.addr(), r.Upstream())
	c.send(t, "two")
	c.expect(t, "new:two")
	require.Equal(t, old.received()[0].from, next.received()[0].from, "the session kept its socket")

	// The old server talks to the session: dropped.
	_, err := old.conn.WriteToUDPAddrPort([]byte("stale"), old.received()[0].from)
	require.NoError(t, err)
	eventually(t, func() bool { return r.Stats().Stray == 1 }, "the old server's datagram was not dropped")
	c.send(t, "three")
	c.expect(t, "new:three")
	require.Len(t, old.received(), 1)
	require.Equal(t, 1, r.Stats().Faults)

	err = r.SetUpstream("[::1]:4433")
	require.ErrorContains(t, err, "address family")
	require.Equal(t, next.addr(), r.Upstream())
}

// The upstream may be ::1, where the machine has it.
func TestUDPIPv6Upstream(t *testing.T) {
	t.Parallel()
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no ::1 here: %v", err)
	} else {
		c.Close()
	}
	u := startUDPUpstream(t, "udp6", "[::1]:0", "u6", true)
	r := startRelay(t, u.addr(), 1)
	c := newUDPClient(t, r)
	c.send(t, "hi")
	c.expect(t, "u6:hi")
	require.True(t, u.received()[0].from.Addr().Is6())
}

func TestUDPBadInput(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"", "127.0.0.1", "localhost:4433", "10.0.0.1:4433", "[2001:db8::1]:4433", "127.0.0.1:0"} {
		r, err := faultproxy.NewUDPRelay(addr, 1)
		require.Error(t, err, "New(%q)", addr)
		require.Nil(t, r)
		require.ErrorContains(t, err, "tether/tethertest/faultproxy: ")
	}
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r := startRelay(t, u.addr(), 1)
	for _, l := range []faultproxy.Loss{{Up: -0.1}, {Down: 1.5}, {Up: math.NaN()}, faultproxy.BothWays(math.Inf(1))} {
		require.Error(t, r.SetLoss(l), "SetLoss(%+v)", l)
		_, err := r.LoseFor(l, time.Second)
		require.Error(t, err, "LoseFor(%+v)", l)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := r.LoseFor(faultproxy.BothWays(1), d)
		require.Error(t, err, "LoseFor(1, %v)", d)
	}
	require.ErrorContains(t, r.SetUpstream("192.0.2.1:4433"), "loopback")
	require.Equal(t, faultproxy.Loss{}, r.Loss(), "a bad loss changed the loss")
	require.Equal(t, 0, r.Stats().Faults)
}

// Close stops forwarding and every goroutine (goleak checks that at the
// end), and the relay refuses new faults.
func TestUDPClose(t *testing.T) {
	t.Parallel()
	u := startUDPUpstream(t, "udp4", "127.0.0.1:0", "u", true)
	r, err := faultproxy.NewUDPRelay(u.addr(), 1)
	require.NoError(t, err)
	for range 3 {
		c := newUDPClient(t, r)
		c.send(t, "x")
		c.expect(t, "u:x")
	}
	require.NoError(t, r.Close())
	require.Error(t, r.Close(), "a second Close")
	require.Error(t, r.SetLoss(faultproxy.BothWays(0.5)))
	_, err = r.LoseFor(faultproxy.BothWays(0.5), time.Second)
	require.Error(t, err)
	require.Error(t, r.SetUpstream(u.addr()))
	r.Heal()
	r.Blackhole(true)

	c := newUDPClient(t, r)
	err = nil
	for range 3 { // the port is closed: ICMP may fail a later send
		if _, err = c.conn.WriteToUDPAddrPort([]byte("y"), c.relay); err != nil {
			break
		}
	}
	if err == nil {
		c.expectNothing(t, 50*time.Millisecond)
	}
	require.Len(t, u.received(), 3)
}
