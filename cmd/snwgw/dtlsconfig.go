package main

import (
	"fmt"
	"log/slog"

	"github.com/snwgw/snwgw/transport"
)

// DTLSConfig is one [[dtls]] link: MQTT-SN over DTLS 1.2, authenticated by
// pre-shared keys, certificates or both.
type DTLSConfig struct {
	Address              string   `toml:"address"`
	PSKFile              string   `toml:"psk_file"`
	PSKIdentityHint      string   `toml:"psk_identity_hint"`
	CertFile             string   `toml:"cert_file"`
	KeyFile              string   `toml:"key_file"`
	ClientCAFile         string   `toml:"client_ca_file"`
	HandshakeTimeout     Duration `toml:"handshake_timeout"`
	MaxPendingHandshakes int      `toml:"max_pending_handshakes"`
	MaxPendingPerIP      int      `toml:"max_pending_per_ip"`
	MaxAssociations      int      `toml:"max_associations"`
	MaxUnverified        int      `toml:"max_unverified"`
	IdleTimeout          Duration `toml:"idle_timeout"`
	MaxPacketSize        int      `toml:"max_packet_size"`
}

// options loads the key and certificate files and maps the table onto
// transport.DTLSOptions.
func (d DTLSConfig) options(log *slog.Logger) (transport.DTLSOptions, error) {
	o := transport.DTLSOptions{
		Addr:                 d.Address,
		PSKIdentityHint:      d.PSKIdentityHint,
		HandshakeTimeout:     d.HandshakeTimeout.Duration,
		MaxPendingHandshakes: d.MaxPendingHandshakes,
		MaxPendingPerIP:      d.MaxPendingPerIP,
		MaxAssociations:      d.MaxAssociations,
		MaxUnverified:        d.MaxUnverified,
		IdleTimeout:          d.IdleTimeout.Duration,
		Logger:               log,
	}
	if o.Addr == "" {
		o.Addr = ":8883"
	}
	if d.MaxPacketSize < 0 || d.MaxPacketSize > 65535 {
		return o, fmt.Errorf("max_packet_size %d is outside 0..65535", d.MaxPacketSize)
	}
	if d.PSKFile != "" {
		psk, err := transport.LoadPSKFile(d.PSKFile)
		if err != nil {
			return o, err
		}
		o.PSK = psk
	}
	if d.CertFile != "" || d.KeyFile != "" || d.ClientCAFile != "" {
		certs, cas, err := transport.LoadDTLSCertificates(d.CertFile, d.KeyFile, d.ClientCAFile)
		if err != nil {
			return o, err
		}
		o.Certificates, o.ClientCAs = certs, cas
	}
	return o, o.Validate()
}
