package tethertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// The test certificates: a CA of their own, and a server certificate for
// localhost, 127.0.0.1 and ::1 that it signed, made once per process.
var certs = sync.OnceValues(func() (*x509.CertPool, tls.Certificate) {
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tethertest CA"},
		NotBefore:             time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey))
	caCert := must(x509.ParseCertificate(caDER))

	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    caTmpl.NotBefore,
		NotAfter:     caTmpl.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey))

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: must(x509.ParseCertificate(der))}
})

// TLSServerConfig returns a new server tls.Config for tests of TLS and QUIC
// tethers, with the given ALPN protocols. Its certificate is for
// localhost, 127.0.0.1 and ::1, signed by a CA that only
// [TLSClientConfig] trusts, and valid from 1990 to 2100, so that it also
// verifies inside testing/synctest, whose clock starts in 2000. The
// certificates are made once per process (ECDSA P-256); each call returns
// a Config of its own, which the caller may change.
func TLSServerConfig(nextProtos ...string) *tls.Config {
	_, cert := certs()
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: nextProtos}
}

// TLSClientConfig returns a new client tls.Config that trusts the CA of
// [TLSServerConfig]'s certificate alone (RootCAs), for server name
// "localhost", with the given ALPN protocols.
func TLSClientConfig(nextProtos ...string) *tls.Config {
	pool, _ := certs()
	return &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: nextProtos}
}

// must panics if the standard library's crypto fails, which no test could
// recover from.
func must[T any](v T, err error) T {
	if err != nil {
		panic("tethertest: making the test certificates: " + err.Error())
	}
	return v
}
