//go:build !linux

package mqttload

import (
	"context"
	"errors"
	"fmt"
)

// Terminate stops the process and would return the bytes it wrote to
// storage over its life; that count is Linux's, so here it only stops it.
func (p *Process) Terminate(ctx context.Context) (written int64, err error) {
	p.Stop()
	return 0, fmt.Errorf("mqttload: bytes written by a process: %w", errors.ErrUnsupported)
}
