package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator"
)

// benchScenarios are the scenarios in the order they run.
var benchScenarios = []string{"ingest", "qos1", "qos2", "connect", "idle", "wake", "latency"}

// runBench runs benchmark scenarios against a gateway and a broker (our
// own, in-process, unless both addresses are given) and prints a table per
// scenario, or JSON.
func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		gateway, broker string
		pid             int
		scenarios       string
		ingestClients   int
		startRate       int
		maxRate         int
		step            time.Duration
		qosClients      int
		qosDuration     time.Duration
		storm           int
		idle            int
		keepAlive       time.Duration
		idleMeasure     time.Duration
		wake            int
		rate            int
		latencyClients  int
		latencyDuration time.Duration
		timeout         time.Duration
		jsonOut         bool
	)
	fs.StringVar(&gateway, "gateway", "", "MQTT-SN gateway UDP address (default: start our own in-process)")
	fs.StringVar(&broker, "broker", "", "MQTT broker address behind the gateway (with --gateway)")
	fs.IntVar(&pid, "gateway-pid", 0, "process id of an external gateway, for the idle scenario's memory and CPU")
	fs.StringVar(&scenarios, "scenarios", strings.Join(benchScenarios, ","), "scenarios to run, comma-separated")
	fs.IntVar(&ingestClients, "ingest-clients", 1000, "ingest: publishing clients")
	fs.IntVar(&startRate, "ingest-start", 10000, "ingest: first offered rate, msg/s")
	fs.IntVar(&maxRate, "ingest-max", 1000000, "ingest: highest rate to try, msg/s")
	fs.DurationVar(&step, "ingest-step", 2*time.Second, "ingest: length of each rate step")
	fs.IntVar(&qosClients, "qos-clients", 100, "qos1, qos2: concurrent clients")
	fs.DurationVar(&qosDuration, "qos-duration", 5*time.Second, "qos1, qos2: length of the run")
	fs.IntVar(&storm, "connects", 10000, "connect: CONNECTs sent back to back")
	fs.IntVar(&idle, "idle-clients", 100000, "idle: connected clients")
	fs.DurationVar(&keepAlive, "idle-keepalive", time.Minute, "idle: the clients' keep-alive")
	fs.DurationVar(&idleMeasure, "idle-measure", 10*time.Second, "idle: how long to measure CPU")
	fs.IntVar(&wake, "wake-clients", 10000, "wake: sleeping clients")
	fs.IntVar(&rate, "rate", 10000, "latency: offered rate, msg/s")
	fs.IntVar(&latencyClients, "latency-clients", 100, "latency: publishing clients")
	fs.DurationVar(&latencyDuration, "latency-duration", 5*time.Second, "latency: length of the run")
	fs.DurationVar(&timeout, "timeout", 60*time.Second, "connect, wake: how long to wait for the answers")
	fs.BoolVar(&jsonOut, "json", false, "print the results as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("bench takes no arguments, got %q", fs.Args())}
	}
	if (gateway == "") != (broker == "") {
		return usageError{"--gateway and --broker go together (neither: our own gateway in-process)"}
	}
	run := map[string]bool{}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if !contains(benchScenarios, s) {
			return usageError{fmt.Sprintf("--scenarios: unknown scenario %q (want %s)", s, strings.Join(benchScenarios, ", "))}
		}
		run[s] = true
	}

	target := simulator.BenchTarget{Gateway: gateway, Broker: broker, GatewayPID: pid}
	if gateway == "" {
		stop, t, err := startBenchServer(ctx)
		if err != nil {
			return err
		}
		defer stop()
		target = t
	}
	results := map[string]any{}
	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "gateway %s, broker %s\n\n", target.Gateway, target.Broker)
	for _, s := range benchScenarios {
		if !run[s] {
			continue
		}
		var err error
		switch s {
		case "ingest":
			var r *simulator.IngestResult
			r, err = simulator.BenchIngest(ctx, target, simulator.IngestOptions{Clients: ingestClients, StartRate: startRate, MaxRate: maxRate, Step: step})
			if r != nil {
				results[s] = r
				fmt.Fprintf(tw, "ingest, QoS 0, %d clients\noffered/s\tachieved/s\tsent\tdelivered\tlost\n", r.Clients)
				for _, st := range r.Steps {
					fmt.Fprintf(tw, "%d\t%.0f\t%d\t%d\t%d\n", st.Offered, st.Achieved, st.Sent, st.Delivered, st.Sent-min(st.Sent, st.Delivered))
				}
				fmt.Fprintf(tw, "highest rate without loss: %.0f msg/s\n\n", r.MaxLossless)
			}
		case "qos1", "qos2":
			q := mqttsn.QoS1
			if s == "qos2" {
				q = mqttsn.QoS2
			}
			var r *simulator.QoSResult
			r, err = simulator.BenchQoS(ctx, target, simulator.QoSOptions{Clients: qosClients, QoS: q, Duration: qosDuration})
			if r != nil {
				results[s] = r
				fmt.Fprintf(tw, "%v, %d clients, one in flight each\nmsg/s\tmessages\terrors\tp50\tp90\tp99\tmax\n%.0f\t%d\t%d\t%s\t%s\t%s\t%s\n\n",
					r.QoS, r.Clients, r.Rate, r.Messages, r.Errors, dur(r.Latency.P50), dur(r.Latency.P90), dur(r.Latency.P99), dur(r.Latency.Max))
			}
		case "connect":
			var r *simulator.StormResult
			r, err = simulator.BenchConnectStorm(ctx, target, storm, timeout)
			if r != nil {
				results[s] = r
				fmt.Fprintf(tw, "connect storm\nsent\taccepted\trejected\ttime\tCONNACK/s\n%d\t%d\t%d\t%s\t%.0f\n\n", r.Sent, r.Accepted, r.Rejected, dur(r.Elapsed), r.Rate)
			}
		case "idle":
			var r *simulator.IdleResult
			r, err = simulator.BenchIdle(ctx, target, idle, keepAlive, idleMeasure)
			if r != nil {
				results[s] = r
				note := ""
				if r.InProcess {
					note = " (in-process: includes the generator)"
				}
				fmt.Fprintf(tw, "idle scale%s\nclients\tconnected\tRSS before\tRSS after\tbytes/client\tCPU %%\n%d\t%d\t%.1f MB\t%.1f MB\t%.0f\t%.1f\n\n",
					note, r.Clients, r.Connected, mb(r.RSSBefore), mb(r.RSSAfter), r.BytesPerClient, r.CPUPercent)
			}
		case "wake":
			var r *simulator.WakeResult
			r, err = simulator.BenchWakeStorm(ctx, target, wake, timeout)
			if r != nil {
				results[s] = r
				fmt.Fprintf(tw, "wake storm\nclients\tbuffered\tdelivered\twoken\ttime\n%d\t%d\t%d\t%d\t%s\n\n", r.Clients, r.Buffered, r.Delivered, r.Woken, dur(r.Elapsed))
			}
		case "latency":
			var r *simulator.LatencyResult
			r, err = simulator.BenchLatency(ctx, target, rate, latencyClients, latencyDuration)
			if r != nil {
				results[s] = r
				fmt.Fprintf(tw, "end-to-end latency, QoS 0 at %d msg/s\nsent\tdelivered\tp50\tp90\tp99\tmax\n%d\t%d\t%s\t%s\t%s\t%s\n\n",
					r.Rate, r.Sent, r.Delivered, dur(r.Latency.P50), dur(r.Latency.P90), dur(r.Latency.P99), dur(r.Latency.Max))
			}
		}
		if err != nil {
			if !jsonOut {
				tw.Flush()
				_, _ = io.WriteString(stdout, out.String()) // what was measured before
			}
			return fmt.Errorf("bench %s: %w", s, err)
		}
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw.Flush()
	_, err := io.WriteString(stdout, out.String())
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// startBenchServer runs our gateway and broker in this process, with the
// built-in defaults, on loopback ports chosen by the kernel, and an MQTT
// listener for the benchmarks' subscriber.
func startBenchServer(ctx context.Context) (func(), simulator.BenchTarget, error) {
	cfg, err := loadConfig("")
	if err != nil {
		return nil, simulator.BenchTarget{}, err
	}
	cfg.UDP = []UDPConfig{{Address: "127.0.0.1:0"}}
	off := false
	cfg.Persistence.Enabled = &off
	no := false
	cfg.UDP[0].Advertise = &no
	srv, err := startServer(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, simulator.BenchTarget{}, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.close(context.Background())
		return nil, simulator.BenchTarget{}, err
	}
	served := make(chan error, 1)
	go func() { served <- serveDefaults(srv.broker.Serve, l) }()
	stop := func() {
		_ = l.Close()
		<-served
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.close(cctx)
	}
	return stop, simulator.BenchTarget{Gateway: srv.udp[0].LocalAddr().String(), Broker: l.Addr().String()}, nil
}

// serveDefaults calls a Serve method with its zero (default) options.
func serveDefaults[O any](serve func(net.Listener, O) error, l net.Listener) error {
	var o O
	return serve(l, o)
}
