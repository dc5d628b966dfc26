package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Role selects the extended key usage of an issued certificate.
type Role int

// Certificate roles.
const (
	// Client certificates carry ExtKeyUsageClientAuth.
	Client Role = iota
	// Server certificates carry ExtKeyUsageServerAuth and the IPv4 and IPv6
	// loopback addresses as subject alternative names.
	Server
)

// PKI is a certificate authority with a server certificate for the
// loopback addresses. Its files live in a directory removed when the test
// ends.
type PKI struct {
	Dir    string
	CA     *x509.Certificate
	CAKey  *ecdsa.PrivateKey
	CAFile string // the CA certificate, PEM

	// ServerCertFile and ServerKeyFile hold the server certificate
	// (common name "gateway") and its PKCS #8 key, PEM; ServerCert is the
	// same pair loaded.
	ServerCertFile, ServerKeyFile string
	ServerCert                    tls.Certificate
}

// New creates a CA whose subject's common name is name, valid from an hour
// ago for a day, and issues its server certificate.
func New(tb testing.TB, name string) *PKI {
	tb.Helper()
	p := &PKI{Dir: tb.TempDir(), CAKey: NewKey(tb)}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.CAKey.PublicKey, p.CAKey)
	check(tb, err, "create CA certificate")
	p.CA, err = x509.ParseCertificate(der)
	check(tb, err, "parse CA certificate")
	p.CAFile = writePEM(tb, p.Dir, name+"-ca.pem", "CERTIFICATE", der)
	p.ServerCertFile, p.ServerKeyFile = p.Issue(tb, "gateway", time.Now().Add(24*time.Hour), Server)
	p.ServerCert, err = tls.LoadX509KeyPair(p.ServerCertFile, p.ServerKeyFile)
	check(tb, err, "load server certificate")
	return p
}

// Issue signs a certificate for the common name cn, valid from two days
// ago until notAfter (a time in the past gives an expired certificate),
// and returns its PEM certificate and key files, named after cn.
func (p *PKI) Issue(tb testing.TB, cn string, notAfter time.Time, role Role) (certFile, keyFile string) {
	tb.Helper()
	key := NewKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if role == Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.CAKey)
	check(tb, err, "issue certificate for "+cn)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	check(tb, err, "marshal key for "+cn)
	return writePEM(tb, p.Dir, cn+".pem", "CERTIFICATE", der), writePEM(tb, p.Dir, cn+".key", "PRIVATE KEY", kder)
}

// Pool returns a pool holding the CA certificate alone.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return pool
}

// NewKey generates a P-256 ECDSA key, the curve every DTLS stack offers.
func NewKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(tb, err, "generate key")
	return k
}

// serial returns a random 128-bit serial number (RFC 5280 §4.1.2.2 allows
// up to 20 octets), so certificates issued in one test never share one.
func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	check(tb, err, "serial number")
	return n
}

func writePEM(tb testing.TB, dir, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	check(tb, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600), "write "+name)
	return path
}

func check(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("testpki: %s: %v", what, err)
	}
}
