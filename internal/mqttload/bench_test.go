package mqttload_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/mqttload"
	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttcore"
)

// envServe makes the test binary a broker process instead of running
// tests, so that the broker under load has a process (CPU, memory) of its
// own, as Mosquitto does.
const envServe = "MQTTLOAD_SERVE_BROKER"

// envWriteAtExit names a file that the broker process writes
// (writeAtExitSize bytes, synced) as it shuts down, for the tests of the
// write counters.
const envWriteAtExit = "MQTTLOAD_WRITE_AT_EXIT"

const writeAtExitSize = 256 << 10

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		if err := serveBroker(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveBroker runs a broker with default options on a loopback port until
// standard input closes or SIGTERM comes.
func serveBroker() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b, err := mqttcore.New(nil)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "mqttload broker listening", l.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	err = b.Serve(l, mqttcore.ListenerOptions{})
	err = errors.Join(err, b.Close(context.Background()))
	if name := os.Getenv(envWriteAtExit); name != "" {
		err = errors.Join(err, writeSynced(name, writeAtExitSize))
	}
	return err
}

func writeSynced(name string, size int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, size))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// startOurs starts this package's test binary as a broker process.
func startOurs(tb testing.TB) *mqttload.Process {
	tb.Helper()
	return startOursWith(tb)
}

// startOursWith starts the test binary as a broker process with more
// environment variables.
func startOursWith(tb testing.TB, env ...string) *mqttload.Process {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envServe+"=1"), env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	p, err := mqttload.StartProcess(context.Background(), cmd, func(line string) (string, bool) {
		addr, ok := strings.CutPrefix(line, "mqttload broker listening ")
		return addr, ok
	})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		stdin.Close()
		p.Stop()
	})
	return p
}

func startMosquitto(tb testing.TB) *mqttload.Process {
	tb.Helper()
	bin := testpeer.Look(tb, "mosquitto", "mosquitto")
	p, err := mqttload.StartMosquitto(context.Background(), bin, tb.TempDir(), nil)
	require.NoError(tb, err)
	tb.Cleanup(p.Stop)
	return p
}

// TestRunSmall checks the load generator against the broker core in
// process at every QoS: every message must arrive at every subscriber.
func TestRunSmall(t *testing.T) {
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- b.Serve(l, mqttcore.ListenerOptions{}) }()
	defer func() {
		l.Close()
		require.NoError(t, <-served)
		require.NoError(t, b.Close(context.Background()))
	}()
	for qos := range byte(3) {
		res, err := mqttload.Run(context.Background(), mqttload.Config{Addr: l.Addr().String(), Publishers: 3, Subscribers: 2, Messages: 500, QoS: qos, Window: 10})
		require.NoError(t, err, "QoS %d", qos)
		require.Equal(t, int64(1500), res.Published)
		require.Equal(t, int64(3000), res.Delivered)
		require.Positive(t, res.Rate())
	}
}

// BenchmarkThroughput measures publish→subscribe throughput of the broker
// core and, when it is installed, of Mosquitto under the same load in the
// same run, and reports the ratio. Run it once per QoS:
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./internal/mqttload/
func BenchmarkThroughput(b *testing.B) {
	for qos := range byte(3) {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			b.ReportAllocs()
			cfg := mqttload.Config{
				Publishers: mqttload.DefaultPublishers, Subscribers: mqttload.DefaultSubscribers,
				Messages: mqttload.DefaultMessages, PayloadSize: mqttload.DefaultPayloadSize,
				QoS: qos, Timeout: 5 * time.Minute,
			}
			if qos == 2 {
				// Mosquitto 2.0.11 slows down as a QoS 2 run goes on (65k
				// msg/s over the first 50,000 deliveries, 15k after 300,000);
				// a shorter run keeps the benchmark to minutes.
				cfg.Messages = 5000
			}
			for b.Loop() {
				ours := measure(b, startOurs(b), cfg)
				b.ReportMetric(ours.Rate(), "msgs/s")
				b.ReportMetric(float64(ours.PeakRSS)/(1<<20), "peak-MiB")
				if _, err := exec.LookPath("mosquitto"); err != nil && !testpeer.Required() {
					b.Logf("mosquitto not installed: no comparison")
					continue
				}
				theirs := measure(b, startMosquitto(b), cfg)
				b.ReportMetric(theirs.Rate(), "mosquitto-msgs/s")
				b.ReportMetric(float64(theirs.PeakRSS)/(1<<20), "mosquitto-peak-MiB")
				b.ReportMetric(ours.Rate()/theirs.Rate(), "ratio")
				b.Logf("QoS %d, %d publishers, %d messages of %d bytes → %d subscribers: snwgw %.0f msg/s (peak %.1f MiB), mosquitto %.0f msg/s (peak %.1f MiB), ratio %.2f",
					qos, cfg.Publishers, cfg.Publishers*cfg.Messages, cfg.PayloadSize, cfg.Subscribers,
					ours.Rate(), float64(ours.PeakRSS)/(1<<20), theirs.Rate(), float64(theirs.PeakRSS)/(1<<20), ours.Rate()/theirs.Rate())
			}
		})
	}
}

func measure(b *testing.B, p *mqttload.Process, cfg mqttload.Config) mqttload.Measurement {
	b.Helper()
	m, err := mqttload.Measure(context.Background(), p, cfg)
	require.NoError(b, err)
	return m
}
