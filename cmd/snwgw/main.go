// Command snwgw is the MQTT-SN gateway, its built-in MQTT broker and its
// sensor-fleet tools in one binary.
//
// main only wires the process to run, so that every subcommand can be
// exercised in tests with its own arguments and output streams.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(os.Stderr, "snwgw: %v\n\n%s", err, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "snwgw: %v\n", err)
		os.Exit(1)
	}
}

const usage = `usage: snwgw <command> [arguments]

commands:
  serve          run the gateway and its broker (snwgw serve --help for flags)
  pub            publish MQTT-SN messages, like mosquitto_pub (snwgw pub --help)
  sub            subscribe over MQTT-SN, like mosquitto_sub (snwgw sub --help)
  sim            run a simulated sensor fleet against a gateway (snwgw sim --help)
  bench          measure a gateway: ingest, QoS 1/2, connect and wake storms, idle scale, latency
  passwd         add, change or delete users in a password file, like mosquitto_passwd
  config check   validate a configuration file and print the effective configuration
  version        print the version, the Go version and the build's VCS revision
  help           print this text
`

// usageError marks a mistake in the command line, which main answers with
// the usage text and exit status 2, as Go's own tools do.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run executes one subcommand. It never exits the process, so tests can call
// it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, stdout, stderr)
	var h helpRequested
	if errors.As(err, &h) {
		// Help that was asked for is the command's output, not a mistake:
		// it goes to stdout, where a pager or grep can take it, with
		// status 0.
		_, err = io.WriteString(stdout, h.usage)
	}
	return err
}

// helpRequested carries the usage text of a command run with -h or --help
// up to run, which prints it.
type helpRequested struct{ usage string }

func (helpRequested) Error() string { return "help requested" }

// parseFlags parses a command's flags. The flag package prints its usage
// text on the flag set's output, which is stderr for mistakes; asked for,
// the same text becomes a helpRequested for run to print on stdout.
//
// pub, sub and sim take -h HOST, as mosquitto_pub does; -h alone, which
// cannot be a host, asks for help there too.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var text bytes.Buffer
	fs.SetOutput(&text)
	if isHelp(args) {
		fs.Usage()
		fs.SetOutput(out)
		return helpRequested{text.String()}
	}
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		return helpRequested{text.String()}
	}
	_, _ = text.WriteTo(out)
	if err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// isHelp reports whether args ask for help, for commands without flags.
func isHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, rest, stderr, nil)
	case "pub":
		return runPub(ctx, rest, os.Stdin, stdout, stderr)
	case "sub":
		return runSub(ctx, rest, os.Stdin, stdout, stderr)
	case "sim":
		return runSim(ctx, rest, os.Stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, os.Stdin, stdout, stderr)
	case "passwd":
		return runPasswd(rest, os.Stdin, stdout, stderr)
	case "config":
		return runConfig(rest, stdout)
	case "version", "-version", "--version":
		return runVersion(rest, stdout)
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}
