package mqttload_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// written over payload bytes delivered). snwgw is the real `snwgw serve`
// binary, built into a temporary directory. Every broker keeps its files
// in its own temporary directory, all on one file system.
//
//	go test -run '^$' -bench Persistence -benchtime 1x -count 3 ./internal/mqttload
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
				Messages: 3000, PayloadSize: size, QoS: 1, Persistent: true, Timeout: 2 * time.Minute,
			}
			for b.Loop() {
				got := map[string]mqttload.Measurement{}
				var table strings.Builder
				fmt.Fprintf(&table, "QoS 1, persistent sessions, %d publishers × %d messages of %d bytes → %d subscribers\n",
					cfg.Publishers, cfg.Messages, cfg.PayloadSize, cfg.Subscribers)
				fmt.Fprintf(&table, "%-22s %10s %8s %8s %11s %11s %8s %10s\n", "broker", "msg/s", "/off", "/mosq", "B/delivery", "B/publish", "amp", "exit KiB")
				for _, c := range cases {
					m := measurePersistent(b, c, cfg)
					got[c.name] = m
					b.ReportMetric(m.Rate(), c.name+"-msgs/s")
					b.ReportMetric(m.WrittenPerDelivery(), c.name+"-B/delivery")
					b.ReportMetric(m.WriteAmplification(), c.name+"-amp")
				}
				for _, c := range cases {
					m := got[c.name]
					off, mosq := m.Rate()/got["off"].Rate(), m.Rate()/got["mosquitto"].Rate()
					if c.name == "always" || c.name == "interval" {
						b.ReportMetric(off, c.name+"/off")
						b.ReportMetric(mosq, c.name+"/mosquitto")
					}
					fmt.Fprintf(&table, "%-22s %10.0f %8.2f %8.2f %11.1f %11.1f %8.2f %10.0f\n", c.name, m.Rate(), off, mosq,
						m.WrittenPerDelivery(), m.WrittenPerPublish(), m.WriteAmplification(), float64(m.ExitWriteBytes)/1024)
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

// buildSnwgw builds the snwgw command into a temporary directory.
func buildSnwgw(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "snwgw")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/snwgw/snwgw/cmd/snwgw").CombinedOutput()
	require.NoError(tb, err, "go build: %s", out)
	return bin
}
