package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// hangups catches SIGHUP for serve. Its default action ends the process,
// and a gateway gets one when the terminal it was started from goes away,
// or from an operator or a service manager that means "reload": neither
// may take the sensors' gateway down. Caught from the start, so that one
// arriving while the links come up is not fatal either.
type hangups chan os.Signal

func catchHangups() hangups {
	h := make(hangups, 1)
	signal.Notify(h, syscall.SIGHUP)
	return h
}

func (h hangups) stop() { signal.Stop(h) }

// logUntil reports each SIGHUP until ctx ends.
func (h hangups) logUntil(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h:
			log.Info("SIGHUP received; there is nothing to reload yet, serving on")
		}
	}
}
