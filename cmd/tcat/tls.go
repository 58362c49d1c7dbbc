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
// one, written there (with its key) when cfg.ca is set. A certificate of
// tcat's own in cfg.ca that has expired, or expires within a day, is
// replaced by a new one; any other that is not valid now is an error.
func serverTLS(cfg config, stderr io.Writer) (*tls.Config, error) {
	var (
		cert tls.Certificate
		err  error
	)
	dial := "dial with -" + proto(cfg)
	fresh := true
	if pemBytes, rerr := os.ReadFile(cfg.ca); cfg.ca != "" && rerr == nil {
		if cert, err = tls.X509KeyPair(pemBytes, pemBytes); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.ca, err)
		}
		now, leaf := time.Now(), cert.Leaf
		switch {
		case now.Add(24*time.Hour).Before(leaf.NotAfter) && !now.Before(leaf.NotBefore):
			fresh = false
			fmt.Fprintf(stderr, "tcat: certificate from %s: %s -ca %s\n", cfg.ca, dial, cfg.ca)
		case leaf.Subject.CommonName != "tcat" || !bytes.Equal(leaf.RawIssuer, leaf.RawSubject):
			return nil, fmt.Errorf("%s: the certificate is valid from %v to %v, not now",
				cfg.ca, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
		default:
			fmt.Fprintf(stderr, "tcat: the certificate in %s expires %v: making a new one\n", cfg.ca, leaf.NotAfter.Format(time.RFC3339))
		}
	}
	if fresh {
		host, _, _ := net.SplitHostPort(listenAddr(cfg.addr))
		var certPEM, keyPEM []byte
		if cert, certPEM, keyPEM, err = selfSigned(host, time.Now()); err != nil {
			return nil, err
		}
		if cfg.ca != "" {
			if err := os.WriteFile(cfg.ca, append(certPEM, keyPEM...), 0o600); err != nil {
				return nil, err
			}
			fmt.Fprintf(stderr, "tcat: self-signed certificate written to %s: %s -ca %s\n", cfg.ca, dial, cfg.ca)
		} else {
			sum := sha256.Sum256(cert.Certificate[0])
			fmt.Fprintf(stderr, "tcat: self-signed certificate (SHA-256 %x...): %s -insecure\n", sum[:8], dial)
		}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	if cfg.alpn != "" {
		tc.NextProtos = []string{cfg.alpn}
	}
	return tc, nil
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
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, keyPEM, nil
}
