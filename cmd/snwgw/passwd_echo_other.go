//go:build !linux

package main

import "os"

// noEcho leaves the terminal as it is: snwgw runs on Linux, and elsewhere
// -b or a pipe provides the password.
func noEcho(*os.File) (restore func(), err error) { return func() {}, nil }
