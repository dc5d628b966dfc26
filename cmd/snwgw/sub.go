package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// runSub subscribes and prints the messages that arrive, until -C messages
// have been printed, -W seconds have passed (an error) or ctx ends.
func runSub(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf         connFlags
		names      listFlag
		predefined listFlag
		short      bool
		qos        int
		count      int
		timeout    int
		verbose    bool
		sleep      time.Duration
		wake       time.Duration
	)
	cf.register(fs)
	fs.Var(&names, "t", "topic name or filter (repeatable)")
	fs.Var(&predefined, "T", "pre-defined topic id, 1 to 65534 (repeatable)")
	fs.BoolVar(&short, "short", false, "subscribe to -t names of exactly two characters as short topic names")
	fs.IntVar(&qos, "q", 0, "QoS of the subscriptions: 0, 1 or 2")
	fs.IntVar(&count, "C", 0, "exit after this many messages")
	fs.IntVar(&timeout, "W", 0, "give up after this many seconds (exit status 1)")
	fs.BoolVar(&verbose, "v", false, "print the topic before each message")
	fs.DurationVar(&sleep, "sleep", 0, "sleep between wakes, for this long at most, as a battery device does (with --wake)")
	fs.DurationVar(&wake, "wake", 0, "wake every interval to collect the messages buffered by the gateway (with --sleep)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("sub takes no arguments, got %q", fs.Args())}
	}
	if err := cf.validate(); err != nil {
		return err
	}
	switch {
	case qos < 0 || qos > 2:
		return usageError{fmt.Sprintf("-q %d: a subscription's QoS is 0, 1 or 2", qos)}
	case count < 0 || timeout < 0:
		return usageError{"-C and -W cannot be negative"}
	case (sleep > 0) != (wake > 0):
		return usageError{"--sleep and --wake go together"}
	case sleep > 0 && wake > sleep:
		return usageError{"--wake must not be longer than --sleep, or the gateway declares the client lost"}
	}
	var topics []client.Topic
	for _, n := range names {
		if short {
			if len(n) != 2 {
				return usageError{fmt.Sprintf("--short: %q is not two characters", n)}
			}
			topics = append(topics, client.Short(n))
			continue
		}
		topics = append(topics, client.TopicName(n))
	}
	for _, p := range predefined {
		id, err := strconv.ParseUint(p, 10, 16)
		if err != nil || id == 0 || id == 0xFFFF {
			return usageError{fmt.Sprintf("-T %s: a pre-defined id is 1 to 65534", p)}
		}
		topics = append(topics, client.Predefined(uint16(id)))
	}
	if len(topics) == 0 {
		return usageError{"no topic: give -t or -T"}
	}

	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		defer cancel()
	}
	// The handler prints, on the client's dispatcher goroutine, so Wake
	// returns only after every buffered message is out.
	var received atomic.Int64
	reached := make(chan struct{})
	handler := func(m client.Message) {
		n := received.Load()
		if count > 0 && n >= int64(count) {
			return // beyond -C: acknowledged, not printed
		}
		if verbose {
			fmt.Fprintf(stdout, "%s %s\n", m.Topic, m.Payload)
		} else {
			fmt.Fprintf(stdout, "%s\n", m.Payload)
		}
		if received.Add(1) == int64(count) {
			close(reached)
		}
	}
	lost := make(chan error, 1)
	cf.onLost = func(err error) {
		select {
		case lost <- err:
		default:
		}
	}
	c, err := cf.dial(ctx, "sub", stderr, handler)
	if err != nil {
		return cf.explain("connect", err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return subError(ctx, &cf, "connect", err, timeout)
	}
	for _, t := range topics {
		if _, _, err := c.Subscribe(ctx, t, mqttsn.QoS(qos)); err != nil {
			return subError(ctx, &cf, "subscribe to "+t.String(), err, timeout)
		}
	}
	if sleep > 0 {
		if err := c.Sleep(ctx, sleep); err != nil {
			return subError(ctx, &cf, "sleep", err, timeout)
		}
	}
	var wakeTick <-chan time.Time
	if wake > 0 {
		t := time.NewTicker(wake)
		defer t.Stop()
		wakeTick = t.C
	}
	for {
		select {
		case <-reached:
			return endSession(c, sleep > 0)
		case <-wakeTick:
			if err := c.Wake(ctx); err != nil {
				return subError(ctx, &cf, "wake", err, timeout)
			}
		case err := <-lost:
			if sleep > 0 && ctx.Err() == nil && errors.Is(err, client.ErrTimeout) {
				return cf.explain("wake", err)
			}
			return cf.explain("session", err)
		case <-ctx.Done():
			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if count > 0 {
					return fmt.Errorf("timeout: %d of %d messages in %d s", received.Load(), count, timeout)
				}
				return fmt.Errorf("timeout after %d s (%d messages)", timeout, received.Load())
			}
			return endSession(c, sleep > 0) // interrupted, as mosquitto_sub ends on ^C
		}
	}
}

// subError reports a failure, or the -W timeout that caused it.
func subError(ctx context.Context, cf *connFlags, what string, err error, timeout int) error {
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: timeout after %d s", what, timeout)
	}
	if ctx.Err() != nil {
		return nil // interrupted
	}
	return cf.explain(what, err)
}

// endSession disconnects politely; a sleeping client first comes back.
func endSession(c *client.Client, asleep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if asleep {
		if err := c.Connect(ctx); err != nil {
			return nil // the gateway will expire the session
		}
	}
	_ = c.Disconnect(ctx)
	return nil
}
