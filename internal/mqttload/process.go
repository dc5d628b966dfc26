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

// StartMosquitto runs the mosquitto broker at bin on a spare loopback port
// with a configuration file written to dir, and returns once it reports
// that it is running. The configuration is Mosquitto's default but for
// anonymous access, no persistence and max_queued_messages 0 (no limit):
// Mosquitto 2.0.11 miscounts its per-client queue under sustained QoS 1
// and 2 load and starts dropping after about a thousand messages although
// the closed-loop load never lets a queue hold more than Config.Window
// messages per publisher.
func StartMosquitto(ctx context.Context, bin, dir string) (*Process, error) {
	port, err := SparePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	text := "listener " + strconv.Itoa(port) + " 127.0.0.1\n" +
		"allow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("mqttload: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return StartProcess(ctx, exec.CommandContext(ctx, bin, "-c", conf), func(line string) (string, bool) {
		// "mosquitto version 2.0.11 running"
		return addr, strings.Contains(line, "mosquitto version") && strings.HasSuffix(line, " running")
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

// Measurement is one broker's figures under one load.
type Measurement struct {
	Result
	PeakRSS int64 // bytes
}

// Measure runs the load cfg against the broker process p (cfg.Addr is set
// to p.Addr) and reads its peak memory afterwards.
func Measure(ctx context.Context, p *Process, cfg Config) (Measurement, error) {
	cfg.Addr = p.Addr
	res, err := Run(ctx, cfg)
	if err != nil {
		return Measurement{Result: res}, err
	}
	peak, err := PeakRSS(p.PID())
	return Measurement{Result: res, PeakRSS: peak}, err
}
