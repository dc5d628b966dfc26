package mqttload_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/mqttload"
)

// TestReadIO checks the write counter on this test's own process: a file
// of 1 MiB written and synced must show up in write_bytes.
func TestReadIO(t *testing.T) {
	before, err := mqttload.ReadIO(os.Getpid())
	require.NoError(t, err)
	f, err := os.Create(filepath.Join(t.TempDir(), "written"))
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	after, err := mqttload.ReadIO(os.Getpid())
	require.NoError(t, err)
	if after.WriteBytes == before.WriteBytes {
		// tmpfs and other memory file systems write no storage.
		t.Skipf("nothing counted for a file in %s: not on a block device", os.TempDir())
	}
	require.GreaterOrEqual(t, after.WriteBytes-before.WriteBytes, int64(1<<20))

	_, err = mqttload.ReadIO(-1)
	require.Error(t, err)
}

// TestMeasureToExit checks the per-message figures and the count through
// the exit on a child process that writes a known amount: the test binary
// as a broker that writes a file as it shuts down.
func TestMeasureToExit(t *testing.T) {
	dir := t.TempDir()
	p := startOursWith(t, envWriteAtExit+"="+filepath.Join(dir, "saved"))
	m, err := mqttload.MeasureToExit(context.Background(), p, mqttload.Config{Publishers: 2, Subscribers: 2, Messages: 100, PayloadSize: 64, QoS: 1, Persistent: true})
	require.NoError(t, err)
	require.Equal(t, int64(400), m.Delivered)
	require.Equal(t, 64, m.PayloadSize)
	info, err := os.Stat(filepath.Join(dir, "saved"))
	require.NoError(t, err)
	require.Equal(t, int64(writeAtExitSize), info.Size())
	if m.WriteBytes+m.ExitWriteBytes == 0 {
		t.Skipf("nothing counted for a file in %s: not on a block device", dir)
	}
	require.GreaterOrEqual(t, m.ExitWriteBytes, int64(writeAtExitSize))
	total := float64(m.WriteBytes + m.ExitWriteBytes)
	require.InDelta(t, total/400, m.WrittenPerDelivery(), 1e-9)
	require.InDelta(t, total/200, m.WrittenPerPublish(), 1e-9)
	require.InDelta(t, total/(400*64), m.WriteAmplification(), 1e-9)
}
