// Package scripts holds no code: its tests run the shell scripts beside
// it, which `make` calls, against a stand-in for the go command.
package scripts
