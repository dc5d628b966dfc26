package main

import (
	"fmt"
	"log/slog"

	"github.com/snwgw/snwgw/bridge"
)

// BridgeConfig is one [[bridge]] table: an upstream MQTT 5 broker.
type BridgeConfig struct {
	Name            string            `toml:"name"`
	URL             string            `toml:"url"`
	ClientID        string            `toml:"client_id"`
	Username        string            `toml:"username"`
	Password        string            `toml:"password"`
	PasswordFile    string            `toml:"password_file"`
	KeepAlive       Duration          `toml:"keep_alive"`
	SessionExpiry   Duration          `toml:"session_expiry"`
	ConnectRetryMin Duration          `toml:"connect_retry_min"`
	ConnectRetryMax Duration          `toml:"connect_retry_max"`
	ConnectTimeout  Duration          `toml:"connect_timeout"`
	PublishTimeout  Duration          `toml:"publish_timeout"`
	StateTopic      string            `toml:"state_topic"`
	TLS             BridgeTLSConfig   `toml:"tls"`
	Queue           BridgeQueueConfig `toml:"queue"`
	Rules           []BridgeRule      `toml:"rule"`
}

// BridgeTLSConfig is [bridge.tls].
type BridgeTLSConfig struct {
	CAFile             string `toml:"ca_file"`
	CertFile           string `toml:"cert_file"`
	KeyFile            string `toml:"key_file"`
	ServerName         string `toml:"server_name"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
}

// BridgeQueueConfig is [bridge.queue].
type BridgeQueueConfig struct {
	Limit  int    `toml:"limit"`
	Policy string `toml:"policy"`
	Dir    string `toml:"dir"`
}

// BridgeRule is one [[bridge.rule]].
type BridgeRule struct {
	LocalFilter  string `toml:"local_filter"`
	Direction    string `toml:"direction"`
	QoS          *int   `toml:"qos"`
	LocalPrefix  string `toml:"local_prefix"`
	RemotePrefix string `toml:"remote_prefix"`
	Retain       bool   `toml:"retain"`
}

// options maps the table onto bridge.Options. A rule without a direction
// forwards out, and without qos up to QoS 1: the usual choice for sensor
// data, where QoS 0 would silently lose what the gateway acknowledged.
func (c BridgeConfig) options(log *slog.Logger) (bridge.Options, error) {
	o := bridge.Options{
		Name:            c.Name,
		URL:             c.URL,
		ClientID:        c.ClientID,
		Username:        c.Username,
		Password:        c.Password,
		PasswordFile:    c.PasswordFile,
		KeepAlive:       c.KeepAlive.Duration,
		SessionExpiry:   c.SessionExpiry.Duration,
		ConnectRetryMin: c.ConnectRetryMin.Duration,
		ConnectRetryMax: c.ConnectRetryMax.Duration,
		ConnectTimeout:  c.ConnectTimeout.Duration,
		PublishTimeout:  c.PublishTimeout.Duration,
		StateTopic:      c.StateTopic,
		TLS: bridge.TLSOptions{
			CAFile:             c.TLS.CAFile,
			CertFile:           c.TLS.CertFile,
			KeyFile:            c.TLS.KeyFile,
			ServerName:         c.TLS.ServerName,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
		Queue:  bridge.QueueOptions{Limit: c.Queue.Limit, Policy: c.Queue.Policy, Dir: c.Queue.Dir},
		Logger: log,
	}
	for i, r := range c.Rules {
		qos := 1
		if r.QoS != nil {
			qos = *r.QoS
		}
		if qos < 0 || qos > 2 {
			return o, fmt.Errorf("rule[%d]: qos %d is not 0, 1 or 2", i, qos)
		}
		dir := r.Direction
		if dir == "" {
			dir = bridge.DirectionOut
		}
		o.Rules = append(o.Rules, bridge.Rule{
			LocalFilter:  r.LocalFilter,
			Direction:    dir,
			QoS:          byte(qos),
			LocalPrefix:  r.LocalPrefix,
			RemotePrefix: r.RemotePrefix,
			Retain:       r.Retain,
		})
	}
	return o, o.Validate()
}
