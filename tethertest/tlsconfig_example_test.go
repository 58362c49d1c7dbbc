package tethertest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// A TLS server on loopback and a Tether that dials it, with the test
// certificates.
func ExampleTLSServerConfig() {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tethertest.TLSServerConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("hello"))
	}()

	d := &tethertls.Dialer{Config: tethertest.TLSClientConfig()}
	t, err := tether.Dial(context.Background(), d, ln.Addr().String(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(t, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf), "from", t.Conn().(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName)
	// Output: hello from localhost
}
