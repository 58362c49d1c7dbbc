package quic_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// The interop tests run Debian's ngtcp2 example server (package
// ngtcp2-server: /usr/sbin/gtlsserver, ngtcp2 and nghttp3 over GnuTLS),
// which speaks HTTP/3 (ALPN "h3") and serves the files of a directory. It
// sends no stateless reset: a client learns of its restart from its own
// timers. Outside CI a missing binary skips them with a message; in CI
// (CI=true) it fails them.

const h3ALPN = "h3"

// H3_NO_ERROR and H3_REQUEST_CANCELLED (RFC 9114, 8.1).
const (
	h3NoError         = 0x100
	h3RequestCanceled = 0x10c
)

// ngtcp2Path returns the server's binary, or ends the test when it is
// missing.
func ngtcp2Path(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"gtlsserver", "/usr/sbin/gtlsserver"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	const msg = "Debian's ngtcp2 server (gtlsserver) is not installed: apt-get install ngtcp2-server"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI must run the interop tests)")
	}
	t.Skip(msg)
	return ""
}

// ngtcp2 is one ngtcp2 server on 127.0.0.1, which the test kills and
// starts again on the same port.
type ngtcp2 struct {
	t    *testing.T
	bin  string
	dir  string // the certificate, its key and htdocs
	args []string
	port int
	// files are the documents served, by path ("/blob").
	files map[string][]byte

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// startNgtcp2 starts a server with the extra options args (see
// gtlsserver --help) serving a few files, and stops it at the test's end.
func startNgtcp2(t *testing.T, args ...string) *ngtcp2 {
	t.Helper()
	s := &ngtcp2{t: t, bin: ngtcp2Path(t), dir: t.TempDir(), args: args, files: map[string][]byte{}}
	writeCert(t, s.dir, tethertest.TLSServerConfig().Certificates[0])
	htdocs := filepath.Join(s.dir, "htdocs")
	require.NoError(t, os.Mkdir(htdocs, 0o755))
	for name, size := range map[string]int{"small": 100, "blob": 1 << 20} {
		b := make([]byte, size)
		rand.Read(b)
		require.NoError(t, os.WriteFile(filepath.Join(htdocs, name), b, 0o644))
		s.files["/"+name] = b
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s.port = udp.LocalAddr().(*net.UDPAddr).Port
	udp.Close()
	s.start()
	t.Cleanup(s.kill)
	return s
}

// writeCert writes cert's chain and key as PEM files in dir.
func writeCert(t *testing.T, dir string, cert tls.Certificate) {
	t.Helper()
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600))
}

func (s *ngtcp2) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start starts the server and waits until it completes a handshake.
func (s *ngtcp2) start() {
	s.t.Helper()
	args := append([]string{"--quiet", "--htdocs", filepath.Join(s.dir, "htdocs")}, s.args...)
	if os.Getenv("NGTCP2_LOG") != "" {
		args = append([]string{"--no-quic-dump", "--no-http-dump", "--htdocs", filepath.Join(s.dir, "htdocs")}, s.args...)
	}
	args = append(args, "127.0.0.1", strconv.Itoa(s.port),
		filepath.Join(s.dir, "key.pem"), filepath.Join(s.dir, "cert.pem"))
	cmd := exec.Command(s.bin, args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: out}, &lockedWriter{w: out}
	require.NoError(s.t, cmd.Start())
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.out, s.done = cmd, out, done
	s.mu.Unlock()

	// Ready once a handshake completes (the port may be taken a moment
	// after a kill).
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := quic.DialAddr(ctx, s.addr(), tethertest.TLSClientConfig(h3ALPN),
			&quic.Config{HandshakeIdleTimeout: 500 * time.Millisecond})
		cancel()
		if err == nil {
			c.CloseWithError(h3NoError, "")
			return
		}
		select {
		case <-done:
			s.t.Fatalf("ngtcp2 server exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ngtcp2 server: no handshake within %v: %v", wait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills the server (SIGKILL: its clients hear nothing) and waits for
// it to exit.
func (s *ngtcp2) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
	if os.Getenv("NGTCP2_LOG") != "" {
		os.WriteFile(os.Getenv("NGTCP2_LOG"), s.out.Bytes(), 0o644)
	}
}

// restart kills the server and starts it again on the same port.
func (s *ngtcp2) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w.Len() > 64<<10 {
		return len(p), nil // enough to tell what went wrong
	}
	return w.w.Write(p)
}

// h3Dialer is a Dialer for the server's HTTP/3, with HTTP/3's error codes,
// closed at the end of the test.
func h3Dialer(t *testing.T, conf *quic.Config) *tetherquic.Dialer {
	d := &tetherquic.Dialer{
		TLSConfig:       tethertest.TLSClientConfig(h3ALPN),
		Config:          conf,
		StreamErrorCode: h3RequestCanceled,
		ResetOnClose:    true,
		ConnErrorCode:   h3NoError,
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// exchange is one HTTP/3 request on a Tether of its own: the pattern for
// request/response over streams. The Tether is closed after the response.
type exchange struct {
	tt  *tether.Tether
	rec *tethertest.Recorder
}

// dialExchange dials a Tether for one request through d.
func dialExchange(t *testing.T, d *tetherquic.Dialer, addr string) *exchange {
	t.Helper()
	rec := transporttest.NewRecorder(nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tt, err := tether.Dial(ctx, d, addr, rec)
	require.NoError(t, err)
	t.Cleanup(func() { tt.Close() })
	return &exchange{tt: tt, rec: rec}
}

// send sends the HEADERS of a GET for path, and not the FIN that ends the
// request.
func (x *exchange) send(t *testing.T, path string) {
	t.Helper()
	_, err := x.tt.Write(h3Get("localhost", path))
	require.NoError(t, err, "Write of GET %s", path)
}

// get sends a GET for path, ends the request (FIN), and reads the response
// to the server's FIN, within timeout.
func (x *exchange) get(path string, timeout time.Duration) (int, []byte, error) {
	x.tt.SetDeadline(time.Now().Add(timeout))
	if _, err := x.tt.Write(h3Get("localhost", path)); err != nil {
		return 0, nil, fmt.Errorf("Write: %w", err)
	}
	if err := x.tt.CloseWrite(); err != nil {
		return 0, nil, fmt.Errorf("CloseWrite: %w", err)
	}
	return readH3Response(x.tt)
}

// fetch does one request for path on a Tether of its own through d and
// checks the body.
func (s *ngtcp2) fetch(t *testing.T, d *tetherquic.Dialer, path string) tetherquic.Origin {
	t.Helper()
	x := dialExchange(t, d, s.addr())
	status, body, err := x.get(path, wait)
	require.NoError(t, err, "GET %s", path)
	require.Equal(t, 200, status, "GET %s: status", path)
	require.True(t, bytes.Equal(s.files[path], body), "GET %s: %d bytes, want the file's %d", path, len(body), len(s.files[path]))
	o := origin(t, x.tt)
	require.NoError(t, x.tt.Close())
	return o
}
