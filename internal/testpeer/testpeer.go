// Package testpeer finds the outside programs (mosquitto, tshark, …) that
// integration tests use as independent peers.
//
// A missing program skips the test on a developer's machine, naming the
// Debian package that provides it, so `make test` stays green on a fresh
// checkout. With SNWGW_REQUIRE_PEERS=1 (as CI sets it) a missing program
// fails the test instead, so CI can never pass by skipping the real proof.
package testpeer

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire is the environment variable that turns a missing peer from a
// skip into a failure.
const EnvRequire = "SNWGW_REQUIRE_PEERS"

// Required reports whether missing peers must fail tests.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Look returns the absolute path of program, or skips (or fails, when
// peers are required) the test with a message naming debPackage.
func Look(tb testing.TB, program, debPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	msg := program + " not found on PATH: install the Debian package " + debPackage +
		" (apt-get install " + debPackage + ")"
	if Required() {
		tb.Fatalf("%s; %s=1 makes this a failure", msg, EnvRequire)
	}
	tb.Skip(msg)
	return ""
}
