package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
	"github.com/snwgw/snwgw/internal/testpki"
)

// TestImports: the certificates come from the standard library alone.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/internal/testpki")
}

func verify(t *testing.T, p *testpki.PKI, certFile, keyFile string, now time.Time, usage x509.ExtKeyUsage) error {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: p.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestIssuedCertificatesVerify(t *testing.T) {
	p := testpki.New(t, "site")
	other := testpki.New(t, "elsewhere")
	now := time.Now()

	require.NoError(t, verify(t, p, p.ServerCertFile, p.ServerKeyFile, now, x509.ExtKeyUsageServerAuth))
	leaf, err := x509.ParseCertificate(p.ServerCert.Certificate[0])
	require.NoError(t, err)
	assert.NoError(t, leaf.VerifyHostname("127.0.0.1"))
	assert.NoError(t, leaf.VerifyHostname("::1"))

	cert, key := p.Issue(t, "sensor-1", now.Add(time.Hour), testpki.Client)
	require.NoError(t, verify(t, p, cert, key, now, x509.ExtKeyUsageClientAuth))
	assert.Error(t, verify(t, p, cert, key, now, x509.ExtKeyUsageServerAuth), "a client certificate is not a server's")

	expCert, expKey := p.Issue(t, "expired", now.Add(-time.Hour), testpki.Client)
	var invalid x509.CertificateInvalidError
	require.ErrorAs(t, verify(t, p, expCert, expKey, now, x509.ExtKeyUsageClientAuth), &invalid)
	assert.Equal(t, x509.Expired, invalid.Reason)

	strCert, strKey := other.Issue(t, "stranger", now.Add(time.Hour), testpki.Client)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, verify(t, p, strCert, strKey, now, x509.ExtKeyUsageClientAuth), &unknown)
}
