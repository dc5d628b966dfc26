package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator"
)

// runSim runs a sensor fleet described by a fleet file, flags, or both
// (flags override the file), prints the report and fails when a QoS
// guarantee was broken.
func runSim(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		config               string
		host                 string
		port                 int
		serial, framing, xgw string
		baud, xbeeMode       int
		counts               = map[simulator.Profile]*int{}
		qos                  int
		interval, jitter     time.Duration
		keepAlive            time.Duration
		payloadSize          int
		loss, dup, reorder   float64
		delay, delayJitter   time.Duration
		duration             time.Duration
		messages             int
		seed                 uint64
		base                 string
		commands             time.Duration
		retry                time.Duration
		retries              int
		checkSN              bool
		checkMQTT            string
		grace                time.Duration
		jsonOut              bool
		progressEvery        time.Duration
		logLevel             string
	)
	fs.StringVar(&config, "config", "", "fleet file (TOML); see examples/fleet.toml")
	fs.StringVar(&host, "h", "127.0.0.1", "gateway host")
	fs.IntVar(&port, "p", 1883, "gateway UDP port")
	fs.StringVar(&serial, "serial", "", "serial device of the gateway link, instead of -h/-p")
	fs.IntVar(&baud, "baud", 0, "serial baud rate (default 9600)")
	fs.StringVar(&framing, "framing", "raw", "serial framing: raw or xbee")
	fs.IntVar(&xbeeMode, "xbee-api-mode", 1, "XBee API mode: 1, or 2 (escaped)")
	fs.StringVar(&xgw, "xbee-gateway", "", "the gateway's XBee address, with xbee framing")
	for _, p := range simulator.Profiles {
		counts[p] = fs.Int(string(p), 0, fmt.Sprintf("number of %s devices", profileHelp[p]))
	}
	fs.IntVar(&qos, "q", 1, "QoS of the devices' messages: -1, 0, 1 or 2")
	fs.DurationVar(&interval, "interval", simulator.DefaultInterval, "interval between a sensor's messages (a sleepy sensor's sleep)")
	fs.DurationVar(&jitter, "jitter", 0, "random variation of the interval, either way")
	fs.DurationVar(&keepAlive, "k", simulator.DefaultKeepAlive, "keep-alive of the devices")
	fs.IntVar(&payloadSize, "payload-size", 0, "pad every message to at least this many octets")
	fs.Float64Var(&loss, "loss", 0, "impairment: percent of datagrams lost, each way")
	fs.Float64Var(&dup, "dup", 0, "impairment: percent of datagrams duplicated, each way")
	fs.Float64Var(&reorder, "reorder", 0, "impairment: percent of datagrams reordered, each way")
	fs.DurationVar(&delay, "delay", 0, "impairment: delay added to every datagram")
	fs.DurationVar(&delayJitter, "delay-jitter", 0, "impairment: random variation of the delay, either way")
	fs.DurationVar(&duration, "duration", 0, "length of the run (default: until --messages are sent)")
	fs.IntVar(&messages, "messages", 0, "messages each sensor sends (default with no --duration: 10)")
	fs.Uint64Var(&seed, "seed", 1, "random seed; the same seed repeats the same run")
	fs.StringVar(&base, "base", simulator.DefaultBase, "base topic, {base} in names and topics")
	fs.DurationVar(&commands, "commands", 0, "send a command to a random bulb or sleepy sensor this often")
	fs.DurationVar(&retry, "retry", simulator.DefaultRetryInterval, "the devices' T_retry")
	fs.IntVar(&retries, "retries", simulator.DefaultRetryCount, "the devices' N_retry")
	fs.BoolVar(&checkSN, "check-mqttsn", false, "check delivery with an MQTT-SN subscriber through the same gateway")
	fs.StringVar(&checkMQTT, "check-mqtt", "", "check delivery with an MQTT subscriber on this broker (host:port)")
	fs.DurationVar(&grace, "grace", simulator.DefaultGrace, "how long the checker may wait for messages in flight at the end")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fs.DurationVar(&progressEvery, "progress", time.Second, "progress line interval, when stderr is a terminal")
	fs.StringVar(&logLevel, "log-level", "error", "device log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("sim takes no arguments, got %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var f simulator.Fleet
	if config != "" {
		var err error
		if f, err = simulator.LoadFleet(config); err != nil {
			return err
		}
	}
	// Flags given on the command line override the file.
	if set["h"] || set["p"] || set["serial"] || config == "" {
		if serial != "" {
			so, gw, err := simulator.SerialLink(serial, baud, framing, xbeeMode, xgw)
			if err != nil {
				return usageError{err.Error()}
			}
			f.Link = simulator.Link{Serial: so, SerialGateway: gw}
		} else {
			if port <= 0 || port > 65535 {
				return usageError{fmt.Sprintf("-p %d: not a port", port)}
			}
			f.Link = simulator.Link{UDP: net.JoinHostPort(host, strconv.Itoa(port))}
		}
	}
	if qos < -1 || qos > 2 {
		return usageError{fmt.Sprintf("-q %d: QoS is -1, 0, 1 or 2", qos)}
	}
	for _, p := range simulator.Profiles {
		if n := *counts[p]; n != 0 {
			if n < 0 {
				return usageError{fmt.Sprintf("--%s %d: negative", p, n)}
			}
			f.Groups = append(f.Groups, simulator.Group{
				Profile: p, Count: n, QoS: mqttsn.QoS(qos), Interval: interval, Jitter: jitter,
				KeepAlive: keepAlive, PayloadSize: payloadSize, CleanSession: simulator.DefaultCleanSession(p),
			})
		}
	}
	if config != "" {
		for i := range f.Groups {
			g := &f.Groups[i]
			if set["q"] {
				g.QoS = mqttsn.QoS(qos)
			}
			if set["interval"] {
				g.Interval = interval
			}
			if set["jitter"] {
				g.Jitter = jitter
			}
			if set["k"] {
				g.KeepAlive = keepAlive
			}
			if set["payload-size"] {
				g.PayloadSize = payloadSize
			}
		}
	}
	if set["loss"] || set["dup"] || set["reorder"] || set["delay"] || set["delay-jitter"] || config == "" {
		im := simulator.Impairment{Loss: loss, Duplicate: dup, Reorder: reorder, Delay: delay, Jitter: delayJitter}
		f.Up, f.Down = im, im
	}
	override := func(name string, apply func()) {
		if set[name] || config == "" {
			apply()
		}
	}
	override("duration", func() { f.Duration = duration })
	override("messages", func() { f.Messages = messages })
	override("seed", func() { f.Seed = seed })
	override("base", func() { f.Base = base })
	override("commands", func() { f.CommandInterval = commands })
	override("retry", func() { f.RetryInterval = retry })
	override("retries", func() { f.RetryCount = retries })
	override("grace", func() { f.Check.Grace = grace })
	if set["check-mqttsn"] {
		f.Check.MQTTSN = checkSN
	}
	if set["check-mqtt"] {
		f.Check.MQTT = checkMQTT
	}
	if f.Duration == 0 && f.Messages == 0 {
		f.Messages = 10
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageError{"--log-level: " + err.Error()}
	}
	f.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	s, err := simulator.New(f)
	if err != nil {
		if errors.Is(err, simulator.ErrInvalidFleet) || errors.Is(err, simulator.ErrInvalidImpairment) {
			return usageError{err.Error()}
		}
		return err
	}
	stop := startProgress(s, stderr, progressEvery)
	r, err := s.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := r.WriteText(stdout); err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("guarantees broken: %s", strings.Join(r.Failures, "; "))
	}
	return nil
}

var profileHelp = map[simulator.Profile]string{
	simulator.Environment: "environment sensor (temperature, humidity, battery)",
	simulator.Event:       "event sensor (motion, contact)",
	simulator.Sleepy:      "sleepy battery sensor",
	simulator.Bulb:        "colour bulb (zigbee2mqtt ZB_A60_RGBCW)",
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress redraws a progress line on a terminal every interval, and
// returns the function that stops it and ends the line.
func startProgress(s *simulator.Sim, w io.Writer, every time.Duration) func() {
	if !isTerminal(w) || every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var last simulator.Progress
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\n")
				return
			case <-t.C:
			}
			p := s.Progress()
			secs := every.Seconds()
			fmt.Fprintf(w, "\r%s  devices %d (connected %d, asleep %d)  sent %d (%.0f/s)  acked %d  received %d  delivered %d (%.0f/s)  errors %d ",
				p.Elapsed.Round(time.Second), p.Devices, p.Connected, p.Asleep,
				p.Sent, float64(p.Sent-last.Sent)/secs, p.Acknowledged, p.Received,
				p.Delivered, float64(p.Delivered-last.Delivered)/secs, p.Errors)
			last = p
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
