// Package testpki issues X.509 certificates for tests: a certificate
// authority, a server certificate for the loopback addresses, and client
// certificates (valid, expired, or from another authority), written as PEM
// files so that both Go code and outside programs such as openssl s_client
// can load them.
package testpki
