package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQueuePolicy fills the queue while upstream is unreachable and checks
// what each policy keeps, what it counts, and that QoS 0 is dropped and
// counted; the kept messages arrive in order once upstream is back.
func TestQueuePolicy(t *testing.T) {
	for _, tt := range []struct {
		policy string
		want   []int
	}{
		{PolicyRejectNew, []int{0, 1, 2, 3, 4}},
		{PolicyDropOldest, []int{3, 4, 5, 6, 7}},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			m := startMosquitto(t)
			p := newProxy(t, m.addr())
			p.setOpen(false) // upstream unreachable
			b := newBroker(t)
			br := startBridge(t, b, Options{
				Name: "site", URL: p.url(),
				Rules: []Rule{{LocalFilter: "q/#", Direction: DirectionOut, QoS: 1}},
				Queue: QueueOptions{Limit: 5, Policy: tt.policy},
			})
			local := newLocalClient(t, b, "pub")
			for i := range 8 {
				local.publish(t, "q/1", fmt.Sprint(i), 1, false)
			}
			for range 3 {
				local.publish(t, "q/0", "qos0", 0, false)
			}
			require.Eventually(t, func() bool {
				s := br.Stats()
				return s.QueueDropped == 3 && s.QoS0Dropped == 3
			}, waitTime, 5*time.Millisecond)
			assert.Equal(t, 5, br.Stats().Queued)

			up := newObserver(t, m.addr(), "q/#")
			p.setOpen(true)
			for _, want := range tt.want {
				assert.Equal(t, fmt.Sprint(want), up.next(t, nil).Payload)
			}
			local.publish(t, "q/1", "after", 1, false)
			assert.Equal(t, "after", up.next(t, nil).Payload, "nothing else arrived")
			require.Eventually(t, func() bool { return br.Stats().Queued == 0 }, waitTime, time.Millisecond)
		})
	}
}
