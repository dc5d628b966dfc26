package mqttload

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// terminateTimeout bounds a broker's shutdown after SIGTERM; snwgw's own
// bound is 10 s.
const terminateTimeout = 15 * time.Second

// Terminate stops the process as a service manager would: SIGTERM, then
// SIGKILL if it has not exited within terminateTimeout or when ctx ends.
// It returns the bytes the process wrote to storage over its whole life,
// from the resource usage of its exit (ru_oublock, which Linux counts in
// 512-byte units of IOCounters.WriteBytes), so that what a broker saves as
// it shuts down is counted too. A process that had to be killed or did not
// exit with status 0 is an error.
func (p *Process) Terminate(ctx context.Context) (written int64, err error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("mqttload: stopping %s: %w", p.cmd.Path, err)
	}
	timer := time.NewTimer(terminateTimeout)
	defer timer.Stop()
	var waitErr error
	select {
	case waitErr = <-p.done:
		p.done <- waitErr
	case <-timer.C:
		p.Stop()
		return 0, fmt.Errorf("mqttload: %s did not exit within %v of SIGTERM", p.cmd.Path, terminateTimeout)
	case <-ctx.Done():
		p.Stop()
		return 0, fmt.Errorf("mqttload: stopping %s: %w", p.cmd.Path, ctx.Err())
	}
	if waitErr != nil {
		return 0, fmt.Errorf("mqttload: %s after SIGTERM: %w", p.cmd.Path, waitErr)
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, fmt.Errorf("mqttload: no resource usage for %s", p.cmd.Path)
	}
	return ru.Oublock * 512, nil
}
