package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

// The certificates of -tls and -quic: the client's roots, and the
// listener's self-signed certificate.

// clientTLS returns the TLS configuration of -tls and -quic, or nil.
func clientTLS(cfg config) (*tls.Config, error) {
	if !cfg.tls && !cfg.quic {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.insecure}
	if cfg.alpn != "" {
		tc.NextProtos = []string{cfg.alpn}
	}
	if cfg.ca != "" {
		pem, err := os.ReadFile(cfg.ca)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", cfg.ca)
		}
	}
	return tc, nil
}

// serverTLS returns the listen mode's TLS configuration, with a
// self-signed certificate: the one in cfg.ca if the file exists, else a new
// one, written there (with its key) when cfg.ca is set. One of tcat's own
// is made anew when it expires within a day (renewBefore): at the start, and
// in the handshakes of a listener that runs that long. Another's in cfg.ca
// that is not valid now is an error.
func serverTLS(cfg config, stderr io.Writer) (*tls.Config, error) {
	return serverTLSAt(cfg, stderr, time.Now)
}

// renewBefore is how long before it expires tcat makes its certificate anew.
const renewBefore = 24 * time.Hour

// serverTLSAt is serverTLS on the clock now.
func serverTLSAt(cfg config, stderr io.Writer, now func() time.Time) (*tls.Config, error) {
	s := &serverCert{cfg: cfg, stderr: stderr, now: now, own: true}
	if pemBytes, err := os.ReadFile(cfg.ca); cfg.ca != "" && err == nil {
		cert, err := tls.X509KeyPair(pemBytes, pemBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.ca, err)
		}
		leaf := cert.Leaf
		s.own = leaf.Subject.CommonName == "tcat" && bytes.Equal(leaf.RawIssuer, leaf.RawSubject)
		switch {
		case s.fresh(leaf):
			s.cert = &cert
			fmt.Fprintf(stderr, "tcat: certificate from %s: %s -ca %s\n", cfg.ca, s.dial(), cfg.ca)
		case !s.own:
			return nil, fmt.Errorf("%s: the certificate is valid from %v to %v, not now",
				cfg.ca, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
		default:
			fmt.Fprintf(stderr, "tcat: the certificate in %s expires %v: making a new one\n", cfg.ca, leaf.NotAfter.Format(time.RFC3339))
		}
	}
	if s.cert == nil {
		if err := s.renew(); err != nil {
			return nil, err
		}
	}
	tc := &tls.Config{GetCertificate: s.get}
	if cfg.alpn != "" {
		tc.NextProtos = []string{cfg.alpn}
	}
	return tc, nil
}

// serverCert is the listener's certificate.
type serverCert struct {
	cfg    config
	stderr io.Writer
	now    func() time.Time
	own    bool // made by tcat: renewed before it expires

	mu   sync.Mutex
	cert *tls.Certificate // with its Leaf
}

func (s *serverCert) dial() string { return "dial with -" + proto(s.cfg) }

// fresh reports whether leaf is valid now and for renewBefore more.
func (s *serverCert) fresh(leaf *x509.Certificate) bool {
	now := s.now()
	return now.Add(renewBefore).Before(leaf.NotAfter) && !now.Before(leaf.NotBefore)
}

// get is the listener's GetCertificate.
func (s *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.own && !s.fresh(s.cert.Leaf) {
		fmt.Fprintf(s.stderr, "tcat: the certificate expires %v: making a new one (clients started before need it)\n",
			s.cert.Leaf.NotAfter.Format(time.RFC3339))
		if err := s.renew(); err != nil {
			return nil, err
		}
	}
	return s.cert, nil
}

// renew makes a new certificate, and writes it to cfg.ca if set.
func (s *serverCert) renew() error {
	host, _, _ := net.SplitHostPort(listenAddr(s.cfg.addr))
	cert, certPEM, keyPEM, err := selfSigned(host, s.now())
	if err != nil {
		return err
	}
	if s.cfg.ca != "" {
		if err := os.WriteFile(s.cfg.ca, append(certPEM, keyPEM...), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(s.stderr, "tcat: self-signed certificate written to %s: %s -ca %s\n", s.cfg.ca, s.dial(), s.cfg.ca)
	} else {
		sum := sha256.Sum256(cert.Certificate[0])
		fmt.Fprintf(s.stderr, "tcat: self-signed certificate (SHA-256 %x...): %s -insecure\n", sum[:8], s.dial())
	}
	s.cert = &cert
	return nil
}

// selfSigned makes a self-signed certificate, valid for a week from now, for
// localhost, the loopback addresses and host; it returns it with its
// certificate and its key in PEM.
func selfSigned(host string, now time.Time) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return cert, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tcat"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return cert, nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return cert, nil, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, keyPEM, nil
}
