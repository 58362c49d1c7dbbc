// Package testcert makes TLS certificates for tests: a CA and a server
// certificate for localhost, 127.0.0.1 and ::1, valid from 1990 to 2100 so
// that they also verify inside testing/synctest (whose clock starts in 2000).
package testcert

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

// Pair is a CA and a server certificate signed by it.
type Pair struct {
	// CA is the pool that verifies Server.
	CA *x509.CertPool
	// Server is the server's certificate and key.
	Server tls.Certificate
}

var (
	once sync.Once
	pair Pair
)

// Get returns the package's certificates, made once per process.
func Get() Pair {
	once.Do(func() { pair = New() })
	return pair
}

// New makes a fresh CA and server certificate. It panics only if the
// standard library's crypto fails, which a test cannot recover from.
func New() Pair {
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tether test CA"},
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
	return Pair{
		CA:     pool,
		Server: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}
}

// ServerConfig returns a server tls.Config with the server certificate and
// the given ALPN protocols.
func (p Pair) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}, NextProtos: nextProtos}
}

// ClientConfig returns a client tls.Config that trusts the CA, for server
// name "localhost", with the given ALPN protocols.
func (p Pair) ClientConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{RootCAs: p.CA, ServerName: "localhost", NextProtos: nextProtos}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("testcert: " + err.Error())
	}
	return v
}
