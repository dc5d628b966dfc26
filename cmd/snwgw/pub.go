package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator"
	"github.com/snwgw/snwgw/simulator/client"
	"github.com/snwgw/snwgw/transport"
)

// maxMessage bounds a message read from stdin: the largest payload the
// 3-octet MQTT-SN length can carry.
const maxMessage = 65535

// connFlags are the flags pub and sub share: where the gateway is, and the
// session to open with it. The short names are mosquitto_pub's and
// mosquitto_sub's where the meaning is the same.
type connFlags struct {
	host        string
	port        int
	serial      string
	baud        int
	framing     string
	xbeeMode    int
	xbeeGateway string
	dtls        dtlsFlags

	clientID  string
	keepAlive int
	noClean   bool

	willTopic   string
	willPayload string
	willQoS     int
	willRetain  bool

	retry   time.Duration
	retries int
	debug   bool

	// onLost, if set, hears that the session ended unasked.
	onLost func(error)
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.host, "h", "127.0.0.1", "gateway host")
	fs.IntVar(&c.port, "p", 1883, "gateway UDP port (a [[dtls]] link is on 8883 by convention)")
	fs.StringVar(&c.serial, "serial", "", "serial device of the gateway link, instead of -h/-p")
	fs.IntVar(&c.baud, "baud", 0, "serial baud rate (default 9600)")
	fs.StringVar(&c.framing, "framing", "raw", "serial framing: raw or xbee")
	fs.IntVar(&c.xbeeMode, "xbee-api-mode", 1, "XBee API mode: 1, or 2 (escaped)")
	fs.StringVar(&c.xbeeGateway, "xbee-gateway", "", "the gateway's XBee address (64-bit hex, with xbee framing)")
	c.dtls.register(fs)
	fs.StringVar(&c.clientID, "i", "", "client id (default snwgw-<command>-<pid>)")
	fs.IntVar(&c.keepAlive, "k", 60, "keep-alive in seconds (0 switches it off)")
	fs.BoolVar(&c.noClean, "c", false, "clean session off: keep the subscriptions and the buffered messages of an earlier session")
	fs.StringVar(&c.willTopic, "will-topic", "", "will topic")
	fs.StringVar(&c.willPayload, "will-payload", "", "will message")
	fs.IntVar(&c.willQoS, "will-qos", 0, "will QoS: 0, 1 or 2")
	fs.BoolVar(&c.willRetain, "will-retain", false, "retain the will")
	fs.DurationVar(&c.retry, "retry", 5*time.Second, "T_retry: how long to wait for an answer before sending again, DTLS handshake flights included")
	fs.IntVar(&c.retries, "retries", 3, "N_retry: how many times to send again before giving up (a DTLS handshake gets T_retry × (N_retry+1))")
	fs.BoolVar(&c.debug, "d", false, "log the MQTT-SN conversation to stderr")
}

func (c *connFlags) validate() error {
	switch {
	case c.port <= 0 || c.port > 65535:
		return usageError{fmt.Sprintf("-p %d: not a port", c.port)}
	case c.keepAlive < 0 || c.keepAlive > 65535:
		return usageError{fmt.Sprintf("-k %d: keep-alive is 0 to 65535 seconds", c.keepAlive)}
	case c.willQoS < 0 || c.willQoS > 2:
		return usageError{fmt.Sprintf("--will-qos %d: not 0, 1 or 2", c.willQoS)}
	case c.willTopic == "" && (c.willPayload != "" || c.willRetain):
		return usageError{"--will-payload and --will-retain need --will-topic"}
	case c.retry <= 0 || c.retries < 0:
		return usageError{"--retry must be positive and --retries not negative"}
	}
	return c.dtls.validate(c.serial != "")
}

// gatewayName names the gateway in error messages.
func (c *connFlags) gatewayName() string {
	if c.serial != "" {
		return c.serial
	}
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

// dial opens the link and a Client on it; nothing is sent yet.
func (c *connFlags) dial(ctx context.Context, command string, stderr io.Writer, handler func(client.Message)) (*client.Client, error) {
	id := c.clientID
	if id == "" {
		id = fmt.Sprintf("snwgw-%s-%d", command, os.Getpid())
	}
	opts := client.Options{
		ClientID:         id,
		KeepAlive:        time.Duration(c.keepAlive) * time.Second,
		CleanSession:     !c.noClean,
		RetryInterval:    c.retry,
		RetryCount:       c.retries,
		Handler:          handler,
		OnConnectionLost: c.onLost,
	}
	if opts.RetryCount == 0 {
		opts.RetryCount = -1 // the client's "no retransmission"
	}
	if c.willTopic != "" {
		opts.Will = &client.Will{Topic: c.willTopic, Payload: []byte(c.willPayload), QoS: mqttsn.QoS(c.willQoS), Retain: c.willRetain}
	}
	var (
		conn net.PacketConn
		gw   net.Addr
	)
	if c.serial != "" {
		so, xgw, err := simulator.SerialLink(c.serial, c.baud, c.framing, c.xbeeMode, c.xbeeGateway)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		link, err := transport.OpenSerial(ctx, so)
		if err != nil {
			return nil, fmt.Errorf("serial link %s: %w", c.serial, err)
		}
		conn, gw = link, xgw
		if gw == nil {
			gw = link.LocalAddr() // a raw line's single peer
		}
	} else {
		raddr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(c.host, strconv.Itoa(c.port)))
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", c.gatewayName(), err)
		}
		// A connected socket hears the ICMP "port unreachable" of a host
		// with no gateway, so that shows at once instead of after every
		// retry.
		uc, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return nil, fmt.Errorf("gateway %s unreachable: %w", c.gatewayName(), err)
		}
		conn, gw = connectedConn{uc}, raddr
		if c.dtls.enabled() {
			var debug io.Writer
			if c.debug {
				debug = stderr
			}
			if conn, err = c.dtls.dialDTLS(ctx, conn, raddr, c.host, c.retry, c.retries, debug); err != nil {
				return nil, err
			}
		}
	}
	if c.debug {
		conn = &debugConn{PacketConn: conn, w: stderr}
	}
	cl, err := client.Dial(conn, gw, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return cl, nil
}

// explain turns a failure into the one-line error the tools print,
// naming what failed.
func (c *connFlags) explain(what string, err error) error {
	var rc mqttsn.ReturnCode
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: gateway %s unreachable (connection refused)", what, c.gatewayName())
	case errors.Is(err, client.ErrTimeout):
		return fmt.Errorf("%s: timeout: no answer from gateway %s", what, c.gatewayName())
	case errors.As(err, &rc):
		return fmt.Errorf("%s: refused by gateway %s: %v", what, c.gatewayName(), rc)
	case errors.Is(err, client.ErrDisconnected):
		return fmt.Errorf("%s: disconnected by gateway %s", what, c.gatewayName())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// connectedConn is a connected UDP socket seen as a net.PacketConn, so that
// ICMP errors reach the reader.
type connectedConn struct{ *net.UDPConn }

func (c connectedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.UDPConn.Read(b)
	return n, c.RemoteAddr(), err
}

func (c connectedConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.UDPConn.Write(b) }

// debugConn logs every datagram, decoded, as -d asks.
type debugConn struct {
	net.PacketConn
	mu sync.Mutex
	w  io.Writer
}

func (d *debugConn) log(dir string, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := mqttsn.Parse(b)
	if err != nil {
		fmt.Fprintf(d.w, "%s malformed (%v): % x\n", dir, err, b)
		return
	}
	fmt.Fprintf(d.w, "%s %v %+v\n", dir, p.Type(), p)
}

func (d *debugConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := d.PacketConn.ReadFrom(b)
	if err == nil {
		d.log("<-", b[:n])
	}
	return n, a, err
}

func (d *debugConn) WriteTo(b []byte, a net.Addr) (int, error) {
	d.log("->", b)
	return d.PacketConn.WriteTo(b, a)
}

// topicFlags name a topic in one of MQTT-SN's three ways.
type topicFlags struct {
	name       string
	predefined int
	short      bool
}

func (t *topicFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.name, "t", "", "topic name")
	fs.IntVar(&t.predefined, "T", -1, "pre-defined topic id, 1 to 65534, instead of -t")
	fs.BoolVar(&t.short, "short", false, "send -t, exactly two characters, as a short topic name")
}

func (t *topicFlags) topic() (client.Topic, error) {
	switch {
	case t.name != "" && t.predefined >= 0:
		return client.Topic{}, usageError{"give -t or -T, not both"}
	case t.predefined >= 0:
		if t.predefined == 0 || t.predefined > 0xFFFE || t.short {
			return client.Topic{}, usageError{fmt.Sprintf("-T %d: a pre-defined id is 1 to 65534, without --short", t.predefined)}
		}
		return client.Predefined(uint16(t.predefined)), nil
	case t.name == "":
		return client.Topic{}, usageError{"no topic: give -t or -T"}
	case t.short:
		if len(t.name) != 2 {
			return client.Topic{}, usageError{fmt.Sprintf("--short: %q is not two characters", t.name)}
		}
		return client.Short(t.name), nil
	}
	return client.TopicName(t.name), nil
}

// runPub publishes one message, or one per line of stdin.
func runPub(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf        connFlags
		tf        topicFlags
		message   string
		file      string
		lines     bool
		wholeIn   bool
		empty     bool
		qos       int
		retain    bool
		verbose   bool
		haveMsg   bool
		msgSource int
	)
	cf.register(fs)
	tf.register(fs)
	fs.Func("m", "message to send", func(s string) error { message, haveMsg = s, true; return nil })
	fs.StringVar(&file, "f", "", "send the contents of a file as the message")
	fs.BoolVar(&lines, "l", false, "send each line of stdin as a message")
	fs.BoolVar(&wholeIn, "s", false, "send all of stdin as one message")
	fs.BoolVar(&empty, "n", false, "send an empty message")
	fs.IntVar(&qos, "q", 0, "QoS: -1 (no connection), 0, 1 or 2")
	fs.BoolVar(&retain, "r", false, "retain the message")
	fs.BoolVar(&verbose, "v", false, "print each message sent")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("pub takes no arguments, got %q", fs.Args())}
	}
	if err := cf.validate(); err != nil {
		return err
	}
	for _, b := range []bool{haveMsg, file != "", lines, wholeIn, empty} {
		if b {
			msgSource++
		}
	}
	if msgSource != 1 {
		return usageError{"give exactly one of -m, -f, -l, -s and -n"}
	}
	if qos < -1 || qos > 2 {
		return usageError{fmt.Sprintf("-q %d: QoS is -1, 0, 1 or 2", qos)}
	}
	topic, err := tf.topic()
	if err != nil {
		return err
	}
	var payload []byte
	switch {
	case haveMsg:
		payload = []byte(message)
	case file != "":
		if payload, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("message file: %w", err)
		}
	case wholeIn:
		if payload, err = io.ReadAll(stdin); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
	}

	c, err := cf.dial(ctx, "pub", stderr, nil)
	if err != nil {
		return cf.explain("connect", err)
	}
	defer c.Close()
	q := mqttsn.QoS(qos)
	if q != mqttsn.QoSMinus1 {
		if err := c.Connect(ctx); err != nil {
			return cf.explain("connect", err)
		}
	}
	send := func(p []byte) error {
		if err := c.Publish(ctx, client.Message{Topic: topic, Payload: p, QoS: q, Retain: retain}); err != nil {
			return cf.explain("publish to "+topic.String(), err)
		}
		if verbose {
			fmt.Fprintf(stdout, "%s %s\n", topic, p)
		}
		return nil
	}
	if lines {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64*1024), maxMessage)
		for sc.Scan() {
			if err := send(sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
	} else if err := send(payload); err != nil {
		return err
	}
	if q != mqttsn.QoSMinus1 {
		if err := c.Disconnect(ctx); err != nil {
			return cf.explain("disconnect", err)
		}
	}
	return nil
}
