package mqttload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNotReady reports a broker process that ended, or never said it was
// ready, before its start timeout.
var ErrNotReady = errors.New("mqttload: broker process not ready")

// Process is a broker running as a child process.
type Process struct {
	// Addr is the address it listens on.
	Addr string
	cmd  *exec.Cmd
	done chan error
}

// StartProcess starts cmd and waits until a line of its standard error or
// standard output satisfies ready, which returns the address the broker
// listens on. The rest of the output is discarded. The process is killed
// when ctx ends or Stop is called.
func StartProcess(ctx context.Context, cmd *exec.Cmd, ready func(line string) (addr string, ok bool)) (*Process, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mqttload: starting %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(io.EOF)
		p.done <- err
	}()
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			if addr, ok := ready(sc.Text()); ok && !found {
				found = true
				addrs <- addr
			}
		}
		close(addrs)
		_, _ = io.Copy(io.Discard, pr)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case addr, ok := <-addrs:
		if ok {
			p.Addr = addr
			return p, nil
		}
		err := <-p.done
		return nil, fmt.Errorf("%w: %s ended: %v", ErrNotReady, cmd.Path, err)
	case <-timer.C:
	case <-ctx.Done():
	}
	p.Stop()
	return nil, fmt.Errorf("%w: %s", ErrNotReady, cmd.Path)
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// SparePort returns a loopback TCP port that was free a moment ago.
func SparePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mqttload: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// MosquittoOptions are the parts of Mosquitto's configuration a load may
// change; the zero value is StartMosquitto's default configuration.
type MosquittoOptions struct {
	// Persistence turns on `persistence true`, with the database
	// (mosquitto.db) in the directory given to StartMosquitto. Mosquitto
	// writes it every AutosaveInterval and when it shuts down, not as
	// messages arrive.
	Persistence bool
	// AutosaveInterval is autosave_interval, rounded up to whole seconds;
	// 0 leaves Mosquitto's default (1800 s).
	AutosaveInterval time.Duration
}

// StartMosquitto runs the mosquitto broker at bin on a spare loopback port
// with a configuration file written to dir, and returns once it reports
// that it is running. The configuration is Mosquitto's default but for
// anonymous access, what opts says (nil: no persistence) and
// max_queued_messages 0 (no limit): Mosquitto 2.0.11 miscounts its
// per-client queue under sustained QoS 1 and 2 load and starts dropping
// after about a thousand messages although the closed-loop load never lets
// a queue hold more than Config.Window messages per publisher.
func StartMosquitto(ctx context.Context, bin, dir string, opts *MosquittoOptions) (*Process, error) {
	if opts == nil {
		opts = &MosquittoOptions{}
	}
	port, err := SparePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	text := "listener " + strconv.Itoa(port) + " 127.0.0.1\n" +
		"allow_anonymous true\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
	if opts.Persistence {
		// persistence_location must end with a slash.
		text += "persistence true\npersistence_location " + filepath.Clean(dir) + "/\n"
		if os.Geteuid() == 0 {
			// Started as root, Mosquitto runs as the user mosquitto, which
			// cannot write in dir: it would log every save as failed and
			// write nothing.
			text += "user root\n"
		}
		if d := opts.AutosaveInterval; d > 0 {
			text += "autosave_interval " + strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + "\n"
		}
	} else {
		text += "persistence false\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("mqttload: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return StartProcess(ctx, exec.CommandContext(ctx, bin, "-c", conf), func(line string) (string, bool) {
		// "mosquitto version 2.0.11 running"
		return addr, strings.Contains(line, "mosquitto version") && strings.HasSuffix(line, " running")
	})
}

// StartSnwgw runs `bin serve` with its MQTT listener on a loopback port the
// kernel picks, MQTT-SN on a loopback UDP port, and args after those (say
// --data-dir DIR, --no-persistence or --config FILE), and returns once the
// MQTT listener is up. It learns the port from serve's log line
//
//	msg="mqtt listening" component=mqtt listener="tcp 127.0.0.1:PORT"
func StartSnwgw(ctx context.Context, bin string, args ...string) (*Process, error) {
	args = append([]string{"serve", "--mqtt", "127.0.0.1:0", "--udp", "127.0.0.1:0"}, args...)
	return StartProcess(ctx, exec.CommandContext(ctx, bin, args...), func(line string) (string, bool) {
		if !strings.Contains(line, `msg="mqtt listening"`) {
			return "", false
		}
		_, rest, ok := strings.Cut(line, `listener="tcp `)
		if !ok {
			return "", false
		}
		addr, _, ok := strings.Cut(rest, `"`)
		return addr, ok
	})
}

// PeakRSS returns the peak resident memory of process pid in bytes
// (VmHWM of /proc/pid/status; Linux only).
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("mqttload: peak memory: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("mqttload: peak memory: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("mqttload: peak memory: no VmHWM in /proc/%d/status", pid)
}

// IOCounters are a process's I/O totals from /proc/<pid>/io.
type IOCounters struct {
	// WriteBytes is what the process caused to be written to storage: the
	// page-cache pages it dirtied, counted when they are dirtied and
	// attributed to it even when the kernel writes them back later.
	// Writes to pipes and sockets are not in it, nor the file system's own
	// journal.
	WriteBytes int64
	// CancelledWriteBytes is what it dirtied and then truncated or deleted
	// before the pages were written back.
	CancelledWriteBytes int64
}

// ReadIO reads the I/O totals of process pid (Linux only; the process must
// belong to the same user, or the caller must be privileged).
func ReadIO(pid int) (IOCounters, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return IOCounters{}, fmt.Errorf("mqttload: I/O counters: %w", err)
	}
	var io IOCounters
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		var dst *int64
		switch name {
		case "write_bytes":
			dst = &io.WriteBytes
		case "cancelled_write_bytes":
			dst = &io.CancelledWriteBytes
		}
		if !ok || dst == nil {
			continue
		}
		if *dst, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return IOCounters{}, fmt.Errorf("mqttload: I/O counters: %q: %w", line, err)
		}
		found++
	}
	if found != 2 {
		return IOCounters{}, fmt.Errorf("mqttload: I/O counters: no write_bytes in /proc/%d/io", pid)
	}
	return io, nil
}

// Measurement is one broker's figures under one load.
type Measurement struct {
	Result
	PayloadSize int   // bytes, of every message
	PeakRSS     int64 // bytes
	// WriteBytes is what the broker process wrote to storage from just
	// before the first connection of the load to just after the last
	// delivery (IOCounters.WriteBytes).
	WriteBytes int64
	// ExitWriteBytes is what it wrote after the load until it exited,
	// for MeasureToExit: what a broker saves when it shuts down, and what a
	// broker that writes periodically had not written yet.
	ExitWriteBytes int64
}

// WrittenPerDelivery is the bytes written per message delivered to a
// subscriber, during the load and, after MeasureToExit, until the broker
// exited.
func (m Measurement) WrittenPerDelivery() float64 {
	return ratio(m.WriteBytes+m.ExitWriteBytes, m.Delivered)
}

// WrittenPerPublish is the bytes written per message published.
func (m Measurement) WrittenPerPublish() float64 {
	return ratio(m.WriteBytes+m.ExitWriteBytes, m.Published)
}

// WriteAmplification is the bytes written over the payload bytes
// delivered: 1 if every delivered payload were written once and nothing
// else.
func (m Measurement) WriteAmplification() float64 {
	return ratio(m.WriteBytes+m.ExitWriteBytes, m.Delivered*int64(m.PayloadSize))
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Measure runs the load cfg against the broker process p (cfg.Addr is set
// to p.Addr) and reads its peak memory and the bytes it wrote to storage.
func Measure(ctx context.Context, p *Process, cfg Config) (Measurement, error) {
	m, _, err := measure(ctx, p, cfg)
	return m, err
}

// MeasureToExit measures as Measure does, then stops the broker as a
// service manager would (Process.Terminate) and counts what it wrote
// until it exited in ExitWriteBytes. The process is gone when it returns.
func MeasureToExit(ctx context.Context, p *Process, cfg Config) (Measurement, error) {
	m, after, err := measure(ctx, p, cfg)
	if err != nil {
		p.Stop()
		return m, err
	}
	total, err := p.Terminate(ctx)
	if err != nil {
		return m, err
	}
	m.ExitWriteBytes = max(total-after, 0)
	return m, nil
}

// measure returns the measurement and the process's write_bytes counter
// after the load.
func measure(ctx context.Context, p *Process, cfg Config) (Measurement, int64, error) {
	cfg.Addr = p.Addr
	cfg.ensureDefaults()
	before, err := ReadIO(p.PID())
	if err != nil {
		return Measurement{}, 0, err
	}
	res, err := Run(ctx, cfg)
	m := Measurement{Result: res, PayloadSize: cfg.PayloadSize}
	if err != nil {
		return m, 0, err
	}
	after, err := ReadIO(p.PID())
	if err != nil {
		return m, 0, err
	}
	m.WriteBytes = after.WriteBytes - before.WriteBytes
	m.PeakRSS, err = PeakRSS(p.PID())
	return m, after.WriteBytes, err
}
