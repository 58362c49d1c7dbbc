package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
	"github.com/io-tether/tether/internal/sessioncache"
	"github.com/io-tether/tether/internal/tlsalert"
	"github.com/io-tether/tether/tcp"
)

// A Dialer dials TLS connections for a Tether: a TCP connection made by
// NetDialer, then a client handshake with Config. The zero value is usable.
// A Dialer is safe for concurrent use by many Tethers, which then share its
// session cache; it must not be copied after its first Dial.
type Dialer struct {
	// Config is the TLS client configuration; nil is the zero Config. The
	// Dialer clones it at its first Dial and never changes it: neither the
	// Config nor anything it points to may change after that. The clone gets
	// a client session cache (tls.NewLRUClientSessionCache) when
	// ClientSessionCache is nil, so that reconnects resume the session.
	// When ServerName is empty, each dial uses the host of the address it
	// dials, as tls.Dial does.
	Config *tls.Config

	// NetDialer makes the TCP connection under TLS; nil is a zero
	// tcp.Dialer: keep-alive on, the address resolved at every dial. Its
	// timeout (its Timeout, or its NetDialer's, or tcp.DefaultTimeout)
	// bounds each attempt as a whole, the TCP dial and the TLS handshake, as
	// with tls.DialWithDialer.
	NetDialer *tcp.Dialer

	once   sync.Once
	config *tls.Config // the clone of Config, made once
}

// Dial dials addr ("host:port") over TCP and runs the TLS client handshake
// on the connection, within one timeout (see NetDialer). It returns a
// *tls.Conn whose handshake is complete. Once Dial has returned, ctx no
// longer matters.
//
// See the package documentation for the errors and which are permanent.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if d == nil {
		d = new(Dialer) // a nil *Dialer acts as the zero value, with no cache across dials
	}
	config, err := d.configFor(addr)
	if err != nil {
		return nil, attempt.Error("tls", addr, err)
	}
	nd := d.NetDialer
	if nd == nil {
		nd = new(tcp.Dialer)
	}
	ctx, cancel := attempt.WithTimeout(ctx, "tether/tls", attempt.Timeout(nd.Timeout, nd.NetDialer))
	defer cancel()
	raw, err := nd.Dial(ctx, addr)
	if err != nil {
		return nil, err // "dial tcp ADDR: ...": the TCP dial failed
	}
	guard := sessioncache.Note(config.ClientSessionCache, config.ServerName)
	c := tls.Client(raw, config)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		var te *attempt.TimeoutError
		if cause := context.Cause(ctx); errors.Is(err, context.DeadlineExceeded) && errors.As(cause, &te) {
			err = te // the attempt's timeout, not a deadline of ctx's
		}
		err = handshakeError(err)
		var alert tls.AlertError
		if !errors.As(err, &alert) && (!tether.IsPermanent(err) || ctx.Err() != nil) {
			// The server did not answer (it went away, the attempt timed
			// out, or ctx was cancelled meanwhile: the Tether closed):
			// keep the session for the next dial, of any Tether that
			// shares the Dialer.
			guard.Restore()
		}
		return nil, attempt.Error("tls", addr, err)
	}
	return c, nil
}

// configFor returns the configuration of a dial to addr.
func (d *Dialer) configFor(addr string) (*tls.Config, error) {
	d.once.Do(func() {
		if d.Config == nil {
			d.config = new(tls.Config)
		} else {
			d.config = d.Config.Clone()
		}
		// A certificate that the Config's own checks reject is a
		// verification failure: permanent, unless the check says otherwise.
		if f := d.config.VerifyPeerCertificate; f != nil {
			d.config.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				return permanentVerify(f(raw, chains))
			}
		}
		if f := d.config.VerifyConnection; f != nil {
			d.config.VerifyConnection = func(cs tls.ConnectionState) error { return permanentVerify(f(cs)) }
		}
		if d.config.ClientSessionCache == nil {
			d.config.ClientSessionCache = tls.NewLRUClientSessionCache(0)
		}
	})
	if d.config.ServerName != "" {
		return d.config, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err // a *net.AddrError: permanent
	}
	// A clone per dial shares the session cache, whose keys are the server
	// names.
	c := d.config.Clone()
	c.ServerName = host
	return c, nil
}

// permanentVerify marks err, from a Config's verification callback, as
// permanent unless it classifies itself (a Permanent method).
func permanentVerify(err error) error {
	var p interface{ Permanent() bool }
	if err == nil || errors.As(err, &p) {
		return err
	}
	return tether.Permanent(err)
}

// handshakeError makes the handshake errors that say the configurations do
// not match recognisable to tether.IsPermanent (see the package doc).
func handshakeError(err error) error {
	// The alerts a server sends come as a *net.OpError whose Err is of an
	// unexported type of crypto/tls: add the alert to the chain as the
	// exported tls.AlertError, leaving the message as it is, and let
	// tether.IsPermanent judge it.
	if alert, ok := tlsalert.Remote(err); ok {
		return fmt.Errorf("%w%.0w", err, alert)
	}
	// The mismatches the client itself finds are plain errors of crypto/tls,
	// told apart only by their text.
	msg := err.Error()
	for _, m := range localMismatches {
		if strings.HasPrefix(msg, m) {
			return tether.Permanent(err)
		}
	}
	return err
}

// localMismatches are the beginnings of crypto/tls's messages for a
// handshake that fails, on the client's side, because the two sides'
// configurations do not match (or the client's does not make sense).
var localMismatches = []string{
	"tls: server selected unsupported protocol version",
	"tls: server selected unadvertised ALPN protocol",
	"tls: server advertised unrequested ALPN extension",
	"tls: no supported versions satisfy MinVersion and MaxVersion",
	"tls: either ServerName or InsecureSkipVerify must be specified",
}

// Dial returns a Tether over TLS to addr, with a Dialer whose Config is
// config and whose NetDialer is a zero tcp.Dialer: the one-line convenience
// for tether.Dial(ctx, &tls.Dialer{Config: config}, addr, h, opts...). The
// Dialer's session cache lets every reconnect resume the TLS session.
func Dial(ctx context.Context, addr string, config *tls.Config, h tether.DisconnectHandler, opts ...tether.Option) (*tether.Tether, error) {
	return tether.Dial(ctx, &Dialer{Config: config}, addr, h, opts...)
}
