package openssl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/snwgw/snwgw/internal/testpeer"
)

// WaitTimeout bounds every wait on s_client. It guards against a hung
// program only; no test relies on it passing.
const WaitTimeout = 30 * time.Second

// Client is a running `openssl s_client`. Its methods are for the test's
// own goroutine.
type Client struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *stream
	stderr *stream
	off    int // how much of stdout the waits have consumed

	exited  chan struct{} // closed once the process ended and its output is complete
	waitErr error         // set before exited is closed
}

// stream collects one output of the process and signals each write.
type stream struct {
	mu     sync.Mutex
	b      []byte
	signal chan struct{} // capacity 1: "something was written"
}

func newStream() *stream { return &stream{signal: make(chan struct{}, 1)} }

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.b = append(s.b, p...)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *stream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// Start runs `openssl s_client args...` (pass -dtls1_2 for DTLS 1.2) with
// its stdin, stdout and stderr connected to the test. The process is
// killed when the test ends.
func Start(tb testing.TB, args ...string) *Client {
	tb.Helper()
	path := testpeer.Look(tb, "openssl", "openssl")
	c := &Client{stdout: newStream(), stderr: newStream(), exited: make(chan struct{})}
	c.cmd = exec.Command(path, append([]string{"s_client"}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	var err error
	c.stdin, err = c.cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("openssl s_client: stdin: %v", err)
	}
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("openssl s_client: %v", err)
	}
	go func() {
		// Wait returns once the output streams are drained.
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	tb.Cleanup(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// Write hands p to s_client's stdin in one write. s_client reads its
// stdin in one read and sends what it got as one record, so p arrives at
// the server as one datagram, provided the test waited for the answer to
// the previous write (otherwise two writes may be read at once).
func (c *Client) Write(tb testing.TB, p []byte) {
	tb.Helper()
	if _, err := c.stdin.Write(p); err != nil {
		tb.Fatalf("openssl s_client: write stdin: %v\n%s", err, c)
	}
}

// CloseStdin ends s_client's input. Without -quiet or -ign_eof, s_client
// then sends close_notify and exits.
func (c *Client) CloseStdin(tb testing.TB) {
	tb.Helper()
	if err := c.stdin.Close(); err != nil {
		tb.Fatalf("openssl s_client: close stdin: %v", err)
	}
}

// WaitOutput waits until stdout, after what earlier waits consumed,
// contains want, and consumes it up to the end of want. It reports false
// if s_client exited without printing it.
func (c *Client) WaitOutput(tb testing.TB, want string) bool {
	tb.Helper()
	return c.await(tb, strconv.Quote(want), func(b []byte) int {
		if i := bytes.Index(b, []byte(want)); i >= 0 {
			return i + len(want)
		}
		return -1
	})
}

// ReadFull returns the next n bytes of stdout. It fails the test if
// s_client exits before it has printed them.
func (c *Client) ReadFull(tb testing.TB, n int) []byte {
	tb.Helper()
	var got []byte
	ok := c.await(tb, strconv.Itoa(n)+" bytes", func(b []byte) int {
		if len(b) < n {
			return -1
		}
		got = bytes.Clone(b[:n])
		return n
	})
	if !ok {
		tb.Fatalf("openssl s_client exited before printing %d more bytes\n%s", n, c)
	}
	return got
}

// await calls match on the unconsumed stdout each time it grows, until
// match returns how much to consume (≥ 0) or s_client exits.
func (c *Client) await(tb testing.TB, what string, match func([]byte) int) bool {
	tb.Helper()
	timeout := time.NewTimer(WaitTimeout)
	defer timeout.Stop()
	try := func() bool {
		c.stdout.mu.Lock()
		defer c.stdout.mu.Unlock()
		n := match(c.stdout.b[c.off:])
		if n < 0 {
			return false
		}
		c.off += n
		return true
	}
	for {
		if try() {
			return true
		}
		select {
		case <-c.stdout.signal:
		case <-c.exited:
			// The output is complete now: one last look.
			return try()
		case <-timeout.C:
			tb.Fatalf("openssl s_client printed no %s within %v\n%s", what, WaitTimeout, c)
			return false
		}
	}
}

// Wait waits for s_client to exit and returns its exit error (nil for
// status 0).
func (c *Client) Wait(tb testing.TB) error {
	tb.Helper()
	select {
	case <-c.exited:
		return c.waitErr
	case <-time.After(WaitTimeout):
		tb.Fatalf("openssl s_client did not exit within %v\n%s", WaitTimeout, c)
		return nil
	}
}

// Exited is closed once s_client has exited.
func (c *Client) Exited() <-chan struct{} { return c.exited }

// Kill stops s_client, for example one that keeps retransmitting a
// handshake the server will never answer, and waits for it to end.
func (c *Client) Kill(tb testing.TB) {
	tb.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Fatalf("openssl s_client: kill: %v", err)
	}
	_ = c.Wait(tb)
}

// Stdout returns everything s_client has printed on stdout.
func (c *Client) Stdout() string { return c.stdout.String() }

// Stderr returns everything s_client has printed on stderr.
func (c *Client) Stderr() string { return c.stderr.String() }

// String shows both outputs, for failure messages.
func (c *Client) String() string {
	return fmt.Sprintf("s_client stdout:\n%q\ns_client stderr:\n%s", c.Stdout(), c.Stderr())
}

// ClientHello returns the first datagram of `openssl s_client -dtls1_2
// args...`: a ClientHello without a cookie, as a flood of spoofed
// handshakes would send it. args choose what it offers, for example
// -psk_identity and -psk for PSK cipher suites.
func ClientHello(tb testing.TB, args ...string) []byte {
	tb.Helper()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("openssl: listen: %v", err)
	}
	defer sink.Close()
	c := Start(tb, append([]string{"-dtls1_2", "-quiet", "-connect", sink.LocalAddr().String()}, args...)...)
	defer c.Kill(tb)
	if err := sink.SetReadDeadline(time.Now().Add(WaitTimeout)); err != nil {
		tb.Fatalf("openssl: %v", err)
	}
	buf := make([]byte, 65535)
	n, _, err := sink.ReadFrom(buf)
	if err != nil {
		tb.Fatalf("openssl s_client sent no ClientHello: %v\n%s", err, c)
	}
	return buf[:n]
}
