package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/snwgw/snwgw/transport"
)

// dtlsFlags choose DTLS 1.2 for the UDP link of pub and sub, with a
// pre-shared key or with certificates. Any of them set switches the link
// to DTLS. The names are mosquitto_pub's.
type dtlsFlags struct {
	psk         string
	pskIdentity string
	caFile      string
	certFile    string
	keyFile     string
	insecure    bool
}

func (d *dtlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.psk, "psk", "", "DTLS pre-shared key in hex (\"base64:\" before a base64 key), 16 to 64 octets; with --psk-identity")
	fs.StringVar(&d.pskIdentity, "psk-identity", "", "DTLS PSK identity, as the gateway's psk_file names it")
	fs.StringVar(&d.caFile, "cafile", "", "DTLS with certificates: trust gateway certificates signed by the CAs in this PEM file (default: the system's CAs)")
	fs.StringVar(&d.certFile, "cert", "", "DTLS client certificate, PEM (with --key)")
	fs.StringVar(&d.keyFile, "key", "", "DTLS client certificate's private key, PEM (with --cert)")
	fs.BoolVar(&d.insecure, "insecure", false, "DTLS with certificates: do not check that the gateway's certificate names -h; it must still be signed by a trusted CA")
}

// enabled reports whether any DTLS flag was given.
func (d *dtlsFlags) enabled() bool {
	return d.psk != "" || d.pskIdentity != "" || d.usesCertificates()
}

func (d *dtlsFlags) usesCertificates() bool {
	return d.caFile != "" || d.certFile != "" || d.keyFile != "" || d.insecure
}

// validate refuses combinations that cannot work; serial tells whether the
// link is a serial line, which has no DTLS.
func (d *dtlsFlags) validate(serial bool) error {
	switch {
	case !d.enabled():
		return nil
	case serial:
		return usageError{"--psk, --psk-identity, --cafile, --cert, --key and --insecure secure a UDP link, not --serial"}
	case (d.psk == "") != (d.pskIdentity == ""):
		return usageError{"--psk and --psk-identity go together"}
	case d.psk != "" && d.usesCertificates():
		return usageError{"give --psk/--psk-identity or certificates (--cafile, --cert/--key, --insecure), not both"}
	case (d.certFile == "") != (d.keyFile == ""):
		return usageError{"--cert and --key go together"}
	}
	if d.psk != "" {
		if _, err := d.key(); err != nil {
			return err
		}
	}
	return nil
}

// key decodes --psk with the parser of the gateway's psk_file, so a key
// written for one is accepted by the other, with the same checks.
func (d *dtlsFlags) key() ([]byte, error) {
	// A PSK file line is "identity:key"; these identities do not fit one.
	if strings.ContainsAny(d.pskIdentity, ":\r\n") || strings.HasPrefix(d.pskIdentity, "#") {
		return nil, usageError{fmt.Sprintf("--psk-identity %q: a PSK file cannot hold an identity with a colon, a line break or a leading #", d.pskIdentity)}
	}
	keys, err := transport.ParsePSK(strings.NewReader(d.pskIdentity + ":" + d.psk))
	var fe *transport.PSKFileError
	if errors.As(err, &fe) {
		return nil, usageError{"--psk: " + fe.Msg}
	}
	if err != nil {
		return nil, fmt.Errorf("--psk: %w", err)
	}
	return keys[d.pskIdentity], nil
}

// options returns the client's DTLS configuration: the credentials, the
// cipher suites they need and the name to check in the gateway's
// certificate.
func (d *dtlsFlags) options(host string) ([]dtls.ClientOption, error) {
	var opts []dtls.ClientOption
	if d.psk != "" {
		key, err := d.key()
		if err != nil {
			return nil, err
		}
		return append(opts,
			dtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			dtls.WithPSKIdentityHint([]byte(d.pskIdentity)),
			// pion offers no PSK suite unless asked. These are the ones
			// the gateway's [[dtls]] link accepts, in its order: AEAD
			// first, then the one with an ephemeral key exchange, whose
			// CBC mode is older; plain PSK with CBC is left out.
			dtls.WithCipherSuites(
				dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
				dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
				dtls.TLS_PSK_WITH_AES_128_CCM,
				dtls.TLS_PSK_WITH_AES_128_CCM_8,
				dtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
			)), nil
	}
	if d.caFile != "" {
		pem, err := os.ReadFile(d.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s holds no PEM certificate", d.caFile)
		}
		opts = append(opts, dtls.WithRootCAs(pool))
	}
	if d.certFile != "" {
		cert, err := tls.LoadX509KeyPair(d.certFile, d.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert %s, --key %s: %w", d.certFile, d.keyFile, err)
		}
		opts = append(opts, dtls.WithCertificates(cert))
	}
	if !d.insecure {
		// An IP address is checked against the certificate's IP
		// addresses, a name against its DNS names.
		opts = append(opts, dtls.WithServerName(host))
	}
	return opts, nil
}

// dialDTLS runs a DTLS handshake with the gateway at raddr over conn, a
// socket connected to it, and returns the association as the link the
// client runs on. On failure it closes conn. The handshake is held to the
// rules of an MQTT-SN exchange: a flight unanswered for retry is sent
// again, and the whole handshake gets retry × (retries+1), the time a
// CONNECT gets. A gateway drops a handshake with a wrong key without a
// word, so this bound is also how long a wrong key takes to show. With
// debug set it writes the negotiated cipher suite to debug.
func (d *dtlsFlags) dialDTLS(ctx context.Context, conn net.PacketConn, raddr *net.UDPAddr, host string, retry time.Duration, retries int, debug io.Writer) (net.PacketConn, error) {
	opts, err := d.options(host)
	if err != nil {
		conn.Close()
		return nil, err
	}
	opts = append(opts, dtls.WithFlightInterval(retry))
	dc, err := dtls.ClientWithOptions(conn, raddr, opts...)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("DTLS with %s: %w", raddr, err)
	}
	budget := retry * time.Duration(retries+1)
	if budget/time.Duration(retries+1) != retry {
		budget = math.MaxInt64 // overflowed: no bound beyond ctx's
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		if errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("DTLS handshake with %s: %w", raddr, err) // interrupted
		}
		return nil, &dtlsHandshakeError{gateway: raddr.String(), flags: d, err: err}
	}
	if debug != nil {
		if st, ok := dc.ConnectionState(); ok {
			fmt.Fprintf(debug, "-- DTLS handshake with %s: %s\n", raddr, dtls.CipherSuiteName(st.CipherSuiteID))
		}
	}
	return dtlsLink{dc}, nil
}

// dtlsHandshakeError is a failed handshake, explained with the usual
// causes.
type dtlsHandshakeError struct {
	gateway string
	flags   *dtlsFlags
	err     error
}

func (e *dtlsHandshakeError) Error() string {
	return fmt.Sprintf("DTLS handshake with %s failed: %v (%s)", e.gateway, e.err, e.hint())
}

func (e *dtlsHandshakeError) Unwrap() error { return e.err }

// hint names the likely cause; a gateway does not say why it refused.
func (e *dtlsHandshakeError) hint() string {
	var (
		unknownCA x509.UnknownAuthorityError
		wrongName x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	psk := e.flags.psk != ""
	switch {
	case errors.As(e.err, &unknownCA):
		return "the gateway's certificate is not signed by a CA in --cafile"
	case errors.As(e.err, &wrongName):
		return "the gateway's certificate is not for -h; --insecure skips this check"
	case errors.As(e.err, &invalid):
		return "the gateway's certificate has expired or is not a server's"
	case errors.Is(e.err, context.DeadlineExceeded) && psk:
		return "no answer: is there a [[dtls]] link at this port, and do --psk-identity and --psk match the gateway's psk_file?"
	case errors.Is(e.err, context.DeadlineExceeded):
		return "no answer: is there a [[dtls]] link with a certificate at this port?"
	case psk:
		return "check that --psk-identity and --psk match the gateway's psk_file"
	case e.flags.certFile == "":
		return "the gateway may require a client certificate: give --cert and --key"
	}
	return "check that the gateway trusts the CA that signed --cert"
}

// dtlsLink is a DTLS association seen as a net.PacketConn whose one peer
// is the gateway, as connectedConn is for plain UDP: each Write is one
// record, each Read one decrypted datagram.
type dtlsLink struct{ *dtls.Conn }

func (l dtlsLink) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := l.Conn.Read(b)
	return n, l.RemoteAddr(), err
}

func (l dtlsLink) WriteTo(b []byte, _ net.Addr) (int, error) { return l.Conn.Write(b) }
