// Package packaging holds the tests of what ships around the binary, such
// as the systemd unit in deploy/. It has no code of its own.
package packaging
