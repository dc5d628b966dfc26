package simulator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBulbCommands(t *testing.T) {
	b := newBulbState()
	require.NoError(t, b.apply([]byte(`{"state":"ON"}`)))
	assert.True(t, b.on)
	require.NoError(t, b.apply([]byte(`{"state":"TOGGLE"}`)))
	assert.False(t, b.on)
	require.NoError(t, b.apply([]byte(`{"state":"toggle"}`)), "zigbee2mqtt accepts any case")
	assert.True(t, b.on)

	require.NoError(t, b.apply([]byte(`{"state":"ON","brightness":10,"color_temp":153,"transition":2}`)), "several keys at once; unknown ones ignored")
	assert.Equal(t, 10, b.brightness)
	assert.Equal(t, 153, b.colorTemp)
	assert.Equal(t, "color_temp", b.colorMode)

	require.NoError(t, b.apply([]byte(`{"color":{"x":0.7006,"y":0.2993}}`)))
	assert.Equal(t, "xy", b.colorMode)
	assert.InDelta(t, 0.7006, b.x, 1e-9)

	require.NoError(t, b.apply([]byte(`{"brightness":0}`)))
	assert.False(t, b.on, "brightness 0 alone turns the bulb off")
	require.NoError(t, b.apply([]byte(`{"brightness":254}`)))
	assert.True(t, b.on, "and a brightness turns it on")

	var st map[string]any
	raw, err := json.Marshal(b.fields())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Equal(t, map[string]any{
		"state": "ON", "brightness": 254.0, "color_temp": 153.0, "color_mode": "xy",
		"color": map[string]any{"x": 0.7006, "y": 0.2993},
	}, st)
}

func TestBulbRejectsOutOfRange(t *testing.T) {
	for _, p := range []string{
		`{"brightness":255}`,
		`{"brightness":-1}`,
		`{"brightness":12.5}`,
		`{"color_temp":152}`,
		`{"color_temp":501}`,
		`{"state":"DIM"}`,
		`{"color":{"x":1.5,"y":0.3}}`,
		`{"color":{"x":0.3}}`,
		`{"state":"ON","brightness":300}`, // valid with invalid: nothing applies
		`{"brightness":"high"}`,
		`not json`,
		`{"state":"ON"} {"state":"OFF"}`,
		``,
	} {
		b := newBulbState()
		before := b
		err := b.apply([]byte(p))
		assert.ErrorIs(t, err, ErrBulbCommand, p)
		assert.Equal(t, before, b, "state unchanged after %s", p)
	}
}

// FuzzBulbCommand: whatever arrives on /set, the bulb never panics and its
// state stays within zigbee2mqtt's ranges.
func FuzzBulbCommand(f *testing.F) {
	for _, s := range []string{`{"state":"ON","brightness":254}`, `{"color":{"x":0.1,"y":0.2}}`, `{"color_temp":500}`, `{"brightness":1e400}`, `{"color":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := newBulbState()
		if err := b.apply(payload); err != nil {
			assert.ErrorIs(t, err, ErrBulbCommand)
			return
		}
		assert.True(t, b.brightness >= 0 && b.brightness <= MaxBrightness)
		assert.True(t, b.colorTemp >= MinColorTemp && b.colorTemp <= MaxColorTemp)
		assert.True(t, b.x >= 0 && b.x <= 1 && b.y >= 0 && b.y <= 1)
		_, err := json.Marshal(b.fields())
		assert.NoError(t, err)
	})
}
