package mqttload_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/mqttload"
	"github.com/snwgw/snwgw/internal/testpeer"
)

// persistCase is one broker configuration of BenchmarkPersistence.
type persistCase struct {
	name  string
	start func(dir string) (*mqttload.Process, error)
	// file is the data file, relative to the case's directory, that the
	// broker must have written by the time it has exited.
	file string
}

// BenchmarkPersistence measures QoS 1 through persistent sessions with
// snwgw's store on (sync "always", the default, and "interval") and off,
// and Mosquitto with persistence on (autosave every 1800 s, its default,
// and every second, the peer of "interval"), in the same run, on the same
// load:
// the delivery rate, the bytes each broker process writes to storage per
// message (write_bytes of /proc/<pid>/io, from before the load until the
// broker has exited after SIGTERM) and the write amplification (bytes
// written over payload bytes delivered). Each broker runs twice, in the
// order of the cases and back, and its figures are those of both runs
// together: on a shared machine whose load drifts, the ratios then favour
// no one. snwgw is the real `snwgw serve`
// binary, built into a temporary directory. Every broker keeps its files
// in its own temporary directory, all on one file system.
//
//	go test -run '^$' -bench Persistence -benchtime 1x -count 3 -timeout 30m ./internal/mqttload
func BenchmarkPersistence(b *testing.B) {
	mosquitto := testpeer.Look(b, "mosquitto", "mosquitto")
	bin := buildSnwgw(b)
	cases := []persistCase{
		{"off", func(dir string) (*mqttload.Process, error) {
			return mqttload.StartSnwgw(context.Background(), bin, "--no-persistence")
		}, ""},
		{"always", func(dir string) (*mqttload.Process, error) {
			return mqttload.StartSnwgw(context.Background(), bin, "--data-dir", dir)
		}, "snwgw.db"},
		{"interval", func(dir string) (*mqttload.Process, error) {
			conf := filepath.Join(dir, "snwgw.toml")
			if err := os.WriteFile(conf, []byte("[persistence]\nsync = \"interval\"\n"), 0o600); err != nil {
				return nil, err
			}
			return mqttload.StartSnwgw(context.Background(), bin, "--config", conf, "--data-dir", filepath.Join(dir, "data"))
		}, "data/snwgw.db"},
		{"mosquitto", func(dir string) (*mqttload.Process, error) {
			return mqttload.StartMosquitto(context.Background(), mosquitto, dir, &mqttload.MosquittoOptions{Persistence: true})
		}, "mosquitto.db"},
		{"mosquitto-autosave1s", func(dir string) (*mqttload.Process, error) {
			return mqttload.StartMosquitto(context.Background(), mosquitto, dir, &mqttload.MosquittoOptions{Persistence: true, AutosaveInterval: time.Second})
		}, "mosquitto.db"},
	}
	b.Logf("temporary directories in %s", os.TempDir())
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("payload%d", size), func(b *testing.B) {
			b.ReportAllocs()
			cfg := mqttload.Config{
				Publishers: mqttload.DefaultPublishers, Subscribers: mqttload.DefaultSubscribers,
				Messages: 2000, PayloadSize: size, QoS: 1, Persistent: true, Timeout: 2 * time.Minute,
			}
			for b.Loop() {
				got := map[string]mqttload.Measurement{}
				var table strings.Builder
				fmt.Fprintf(&table, "QoS 1, persistent sessions, %d publishers × %d messages of %d bytes → %d subscribers, twice per broker\n",
					cfg.Publishers, cfg.Messages, cfg.PayloadSize, cfg.Subscribers)
				fmt.Fprintf(&table, "%-22s %10s %8s %8s %11s %11s %8s %13s\n", "broker", "msg/s", "/off", "/mosq", "B/delivery", "B/publish", "amp", "exit KiB/run")
				// Each broker runs twice, in the order of the cases and
				// back, so that a machine whose load drifts during the run
				// favours none of them.
				order := append(slices.Clone(cases), cases...)
				slices.Reverse(order[len(cases):])
				for _, c := range order {
					got[c.name] = plus(got[c.name], measurePersistent(b, c, cfg))
				}
				for _, c := range cases {
					m := got[c.name]
					b.ReportMetric(m.Rate(), c.name+"-msgs/s")
					b.ReportMetric(m.WrittenPerDelivery(), c.name+"-B/delivery")
					b.ReportMetric(m.WriteAmplification(), c.name+"-amp")
					off, mosq := m.Rate()/got["off"].Rate(), m.Rate()/got["mosquitto"].Rate()
					if c.name == "always" || c.name == "interval" {
						b.ReportMetric(off, c.name+"/off")
						b.ReportMetric(mosq, c.name+"/mosquitto")
					}
					fmt.Fprintf(&table, "%-22s %10.0f %8.2f %8.2f %11.1f %11.1f %8.2f %13.0f\n", c.name, m.Rate(), off, mosq,
						m.WrittenPerDelivery(), m.WrittenPerPublish(), m.WriteAmplification(), float64(m.ExitWriteBytes)/2/1024)
				}
				b.Log(table.String())
			}
		})
	}
}

// measurePersistent runs one case in a directory of its own and stops the
// broker at the end, counting what it writes as it shuts down.
func measurePersistent(b *testing.B, c persistCase, cfg mqttload.Config) mqttload.Measurement {
	b.Helper()
	dir := b.TempDir()
	p, err := c.start(dir)
	require.NoError(b, err, c.name)
	b.Cleanup(p.Stop)
	m, err := mqttload.MeasureToExit(context.Background(), p, cfg)
	require.NoError(b, err, c.name)
	if c.file != "" {
		// A broker that failed to save (Mosquitto only logs it) would
		// write nothing and look cheap.
		require.FileExists(b, filepath.Join(dir, c.file), "%s saved nothing", c.name)
	}
	return m
}

// plus adds up two runs of one broker: the rate and the bytes per message
// of the sum are those of both runs together.
func plus(a, b mqttload.Measurement) mqttload.Measurement {
	a.Published += b.Published
	a.Delivered += b.Delivered
	a.Elapsed += b.Elapsed
	a.WriteBytes += b.WriteBytes
	a.ExitWriteBytes += b.ExitWriteBytes
	a.PayloadSize = b.PayloadSize
	a.PeakRSS = max(a.PeakRSS, b.PeakRSS)
	return a
}

// buildSnwgw builds the snwgw command into a temporary directory.
func buildSnwgw(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "snwgw")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/snwgw/snwgw/cmd/snwgw").CombinedOutput()
	require.NoError(tb, err, "go build: %s", out)
	return bin
}
