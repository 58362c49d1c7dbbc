package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A listener restarted with -ca FILE keeps the certificate there while it
// is valid for more than a day, makes a new one in place of one of its own
// that is (nearly) expired, and refuses another's that is not valid now.
func TestListenerCertificateFile(t *testing.T) {
	cfg := config{tls: true, ca: filepath.Join(t.TempDir(), "tcat.pem"), addr: "127.0.0.1:0"}
	write := func(made time.Time) []byte {
		_, certPEM, keyPEM, err := selfSigned("", made)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cfg.ca, append(certPEM, keyPEM...), 0o600))
		return certPEM
	}
	load := func() (*tls.Config, string, error) {
		var stderr strings.Builder
		tc, err := serverTLS(cfg, &stderr)
		return tc, stderr.String(), err
	}
	served := func(tc *tls.Config) time.Time {
		cert, err := tc.GetCertificate(&tls.ClientHelloInfo{})
		require.NoError(t, err)
		return cert.Leaf.NotAfter
	}

	write(time.Now().Add(-5 * 24 * time.Hour)) // two days left
	tc, msg, err := load()
	require.NoError(t, err)
	require.Contains(t, msg, "certificate from "+cfg.ca)
	kept := served(tc)
	require.WithinDuration(t, time.Now().Add(2*24*time.Hour), kept, 2*time.Hour)

	for _, made := range []time.Time{
		time.Now().Add(-8 * 24 * time.Hour),            // expired
		time.Now().Add(-7*24*time.Hour + 12*time.Hour), // expires within a day
		time.Now().Add(2 * time.Hour),                  // not valid yet (a clock set back)
	} {
		old := write(made)
		tc, msg, err = load()
		require.NoError(t, err)
		require.Contains(t, msg, "making a new one")
		require.Contains(t, msg, "self-signed certificate written to "+cfg.ca)
		require.WithinDuration(t, time.Now().Add(7*24*time.Hour), served(tc), time.Hour)
		file, err := os.ReadFile(cfg.ca)
		require.NoError(t, err)
		require.False(t, bytes.Contains(file, old), "the old certificate is replaced in the file")
	}

	// Another's certificate that is not valid now: an error, and the file
	// stays as it was.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "db.example"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	file := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	require.NoError(t, os.WriteFile(cfg.ca, file, 0o600))
	_, _, err = load()
	require.ErrorContains(t, err, cfg.ca+": the certificate is valid from ")
	after, err := os.ReadFile(cfg.ca)
	require.NoError(t, err)
	require.Equal(t, file, after)
}

// A listener that runs until its certificate is about to expire makes a
// new one in a handshake, and writes it to the file.
func TestListenerRenewsCertificate(t *testing.T) {
	cfg := config{quic: true, ca: filepath.Join(t.TempDir(), "tcat.pem"), addr: "127.0.0.1:0"}
	var (
		stderr strings.Builder
		now    = time.Now()
	)
	tc, err := serverTLSAt(cfg, &stderr, func() time.Time { return now })
	require.NoError(t, err)
	first, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	now = now.Add(5 * 24 * time.Hour)
	same, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.Same(t, first, same, "two days left: kept")

	now = now.Add(36 * time.Hour) // half a day left
	renewed, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.NotSame(t, first, renewed)
	require.WithinDuration(t, now.Add(7*24*time.Hour), renewed.Leaf.NotAfter, time.Hour)
	require.Contains(t, stderr.String(), "making a new one (clients started before need it)")
	file, err := os.ReadFile(cfg.ca)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(file))
	_, err = renewed.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: now.Add(6 * 24 * time.Hour)})
	require.NoError(t, err, "the file holds the new certificate")
}
