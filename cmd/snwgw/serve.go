package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/snwgw/snwgw/bridge"
	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/store"
	"github.com/snwgw/snwgw/transport"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// shutdownTimeout bounds a graceful shutdown after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

// runServe runs the gateway and its broker until ctx is cancelled.
// ready, if not nil, is called with the running server once every link is
// up; tests use it to learn the addresses of ports chosen by the kernel.
func runServe(ctx context.Context, args []string, stderr io.Writer, ready func(*server)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath string
		udp        listFlag
		mqtt       listFlag
		logLevel   string
		dataDir    string
		noPersist  bool
	)
	fs.StringVar(&configPath, "config", "", "configuration file (default: the built-in defaults)")
	fs.Var(&udp, "udp", "MQTT-SN UDP listen address, replacing the configured ones (repeatable)")
	fs.Var(&mqtt, "mqtt", "MQTT TCP listen address, replacing the configured listeners (repeatable)")
	fs.StringVar(&logLevel, "log-level", "", "log level: debug, info, warn, error")
	fs.StringVar(&dataDir, "data-dir", "", "directory of the data file that keeps sessions and messages across restarts")
	fs.BoolVar(&noPersist, "no-persistence", false, "keep nothing across restarts (no data file)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	hup := catchHangups()
	defer hup.stop()
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	if len(udp) > 0 {
		cfg.UDP = nil
		for _, a := range udp {
			cfg.UDP = append(cfg.UDP, UDPConfig{Address: a})
		}
	}
	if len(mqtt) > 0 {
		cfg.Broker.Listeners = nil
		for _, a := range mqtt {
			cfg.Broker.Listeners = append(cfg.Broker.Listeners, ListenerConfig{Address: a})
		}
	}
	if dataDir != "" {
		cfg.Persistence.DataDir = dataDir
	}
	if noPersist {
		off := false
		cfg.Persistence.Enabled = &off
	}
	if logLevel != "" {
		cfg.Log.Level = logLevel
		if _, err := cfg.logLevel(); err != nil {
			return usageError{"--log-level: " + err.Error()}
		}
	}
	if len(cfg.UDP) == 0 && len(cfg.Serial) == 0 {
		cfg.UDP = []UDPConfig{{}} // MQTT-SN on UDP port 1883
	}
	if len(cfg.Broker.Listeners) == 0 {
		cfg.Broker.Listeners = []ListenerConfig{{}} // MQTT on TCP port 1883
	}
	srv, err := startServer(ctx, cfg, cfg.logger(stderr))
	if err != nil {
		return err
	}
	if ready != nil {
		ready(srv)
	}
	hup.logUntil(ctx, srv.log)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.close(sctx)
}

// server is a running gateway with its broker and links.
type server struct {
	log     *slog.Logger
	broker  *mqttcore.Broker
	gw      *gateway.Gateway
	bridges []*bridge.Bridge
	mqtt    []net.Listener
	serving sync.WaitGroup // Broker.Serve loops
	udp     []*transport.UDPConn
	dtls    []*transport.DTLSConn
	serial  []*transport.SerialLink
	store   *store.DB // nil without persistence
	stopCtx context.CancelFunc
}

func startServer(ctx context.Context, cfg *Config, log *slog.Logger) (_ *server, err error) {
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &server{log: log, stopCtx: stop}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = s.close(cctx)
		}
	}()
	bopts := cfg.brokerOptions(log.With("component", "broker"))
	if bopts.Authorizer, err = cfg.Auth.authorizer(); err != nil {
		return nil, err
	}
	if p := &cfg.Persistence; p.enabled() {
		if s.store, err = store.Open(p.DataDir, p.options(log.With("component", "store"))); err != nil {
			return nil, err
		}
		bopts.Store = s.store.Broker()
		log.Info("persistence on", "file", s.store.Path(), "sync", p.withDefaults().Sync)
	} else {
		log.Warn("persistence off: sessions, queued and retained messages are lost at a restart")
	}
	s.broker, err = mqttcore.New(bopts)
	if err != nil {
		return nil, err
	}
	if err := s.broker.Start(lctx); err != nil {
		return nil, err
	}
	for _, bc := range cfg.Bridges {
		opts, err := bc.options(log.With("component", "bridge", "url", bc.URL))
		if err != nil {
			return nil, err
		}
		br, err := bridge.New(s.broker, opts)
		if err != nil {
			return nil, err
		}
		if err := br.Start(lctx); err != nil {
			return nil, err
		}
		s.bridges = append(s.bridges, br)
	}
	admit, err := cfg.Auth.mqttAdmit()
	if err != nil {
		return nil, err
	}
	for _, lc := range cfg.Broker.Listeners {
		opts, tlsConfig, err := lc.options(log.With("component", "mqtt"))
		if err != nil {
			return nil, err
		}
		opts.Admit = admit
		l, name, err := lc.listen(tlsConfig, log.With("component", "websocket"))
		if err != nil {
			return nil, err
		}
		s.mqtt = append(s.mqtt, l)
		opts.Name = name
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := s.broker.Serve(l, opts); err != nil && !errors.Is(err, mqttcore.ErrClosed) {
				log.Error("mqtt listener failed", "listener", opts.Name, "err", err)
			}
		}()
	}
	gopts, err := cfg.gatewayOptions(log.With("component", "gateway"))
	if err != nil {
		return nil, err
	}
	if s.store != nil {
		gopts.Store = s.store.Gateway()
	}
	s.gw, err = gateway.New(s.broker, gopts)
	if err != nil {
		return nil, err
	}
	for _, u := range cfg.UDP {
		opts, err := u.options(log.With("component", "udp"))
		if err != nil {
			return nil, err
		}
		conn, err := transport.ListenUDP(lctx, opts)
		if err != nil {
			return nil, err
		}
		s.udp = append(s.udp, conn)
		l := gateway.Link{Name: "udp " + conn.LocalAddr().String(), Conn: conn, MaxPacketSize: u.MaxPacketSize}
		if u.Advertise == nil || *u.Advertise {
			l.Broadcast = conn.BroadcastAddr()
		}
		if err := s.gw.Serve(l); err != nil {
			return nil, err
		}
		for _, j := range conn.MulticastJoins() {
			if j.Err != nil {
				log.Warn("multicast group not joined: SEARCHGW sent to it will not be heard", "group", j.Group, "interface", j.Interface, "err", j.Err)
			}
		}
		log.Info("mqtt-sn listening", "link", l.Name, "receive_buffer", conn.RecvBufferSize())
	}
	for _, dc := range cfg.DTLS {
		opts, err := dc.options(log.With("component", "dtls"))
		if err != nil {
			return nil, err
		}
		conn, err := transport.ListenDTLS(lctx, opts)
		if err != nil {
			return nil, err
		}
		s.dtls = append(s.dtls, conn)
		// A DTLS link has no broadcast: each peer is an association.
		l := gateway.Link{Name: "dtls " + conn.LocalAddr().String(), Conn: conn, MaxPacketSize: dc.MaxPacketSize}
		if err := s.gw.Serve(l); err != nil {
			return nil, err
		}
		log.Info("mqtt-sn listening", "link", l.Name, "psk_identities", len(opts.PSK), "certificates", len(opts.Certificates) > 0)
	}
	for _, sc := range cfg.Serial {
		opts, err := sc.options(log.With("component", "serial", "device", sc.Device))
		if err != nil {
			return nil, err
		}
		link, err := transport.OpenSerial(lctx, opts)
		if err != nil {
			return nil, err
		}
		s.serial = append(s.serial, link)
		l := gateway.Link{Name: sc.Framing + " " + sc.Device, Conn: link, MaxPacketSize: link.MaxPacketSize()}
		// Restored sessions find their node again by the address stored
		// in its String form.
		l.ParseAddr = func(a string) (net.Addr, error) { return transport.SerialAddr{Device: a}, nil }
		if sc.Framing == transport.FramingXBee {
			l.ParseAddr = func(a string) (net.Addr, error) { return transport.ParseXBeeAddr(a) }
			if sc.Advertise {
				l.Broadcast = transport.XBeeBroadcast
			}
		}
		if err := s.gw.Serve(l); err != nil {
			return nil, err
		}
		log.Info("mqtt-sn listening", "link", l.Name)
	}
	// With every link served, the stored MQTT-SN sessions come back on
	// theirs; until then the links do not read.
	if err := s.gw.Restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// close stops the links, the gateway and the broker, in that order, so no
// datagram arrives at a gateway whose broker is gone.
func (s *server) close(ctx context.Context) error {
	var errs []error
	if s.gw != nil {
		errs = append(errs, s.gw.Close(ctx))
	}
	for _, c := range s.udp {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, l := range s.serial {
		_ = l.Close()
	}
	for _, d := range s.dtls {
		_ = d.Close()
	}
	// Bridges go after the gateway, so what sensors sent last still has a
	// way upstream, and before the broker they read from.
	for _, b := range s.bridges {
		errs = append(errs, b.Close(ctx))
	}
	if s.broker != nil {
		errs = append(errs, s.broker.Close(ctx))
	}
	// The store goes last: the broker's and the gateway's final changes
	// are committed by its Close.
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	// Closing the broker ends its listeners; a listener whose Serve never
	// started (startup failed half way) is closed here.
	for _, l := range s.mqtt {
		_ = l.Close()
	}
	s.serving.Wait()
	s.stopCtx()
	s.log.Info("snwgw stopped")
	return errors.Join(errs...)
}
