package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The ranges a ZB_A60_RGBCW colour bulb accepts through zigbee2mqtt.
const (
	MaxBrightness = 254
	MinColorTemp  = 153 // mireds, about 6500 K
	MaxColorTemp  = 500 // mireds, 2000 K
)

// ErrBulbCommand: a bulb command is not JSON, or holds a value out of range;
// the bulb's state is unchanged.
var ErrBulbCommand = errors.New("simulator: invalid bulb command")

// bulbState is what a zigbee2mqtt colour bulb reports.
type bulbState struct {
	on         bool
	brightness int
	colorTemp  int
	x, y       float64
	colorMode  string // "color_temp" or "xy": which of the two was set last
}

func newBulbState() bulbState {
	return bulbState{brightness: MaxBrightness, colorTemp: 370, x: 0.4599, y: 0.4106, colorMode: "color_temp"}
}

// bulbCommand is a zigbee2mqtt /set payload; absent keys leave the state.
type bulbCommand struct {
	State      *string  `json:"state"`
	Brightness *float64 `json:"brightness"`
	ColorTemp  *float64 `json:"color_temp"`
	Color      *struct {
		X *float64 `json:"x"`
		Y *float64 `json:"y"`
	} `json:"color"`
}

// apply validates a /set payload as a whole and, if every value is in
// range, applies it. Several keys may be set at once; keys the bulb does
// not know are ignored, as zigbee2mqtt does.
func (b *bulbState) apply(payload []byte) error {
	var c bulbCommand
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("%w: %w", ErrBulbCommand, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the JSON object", ErrBulbCommand)
	}
	next := *b
	if c.State != nil {
		switch strings.ToUpper(*c.State) {
		case "ON":
			next.on = true
		case "OFF":
			next.on = false
		case "TOGGLE":
			next.on = !b.on
		default:
			return fmt.Errorf("%w: state %q is not ON, OFF or TOGGLE", ErrBulbCommand, *c.State)
		}
	}
	if c.Brightness != nil {
		v, err := integer("brightness", *c.Brightness, 0, MaxBrightness)
		if err != nil {
			return err
		}
		next.brightness = v
		if c.State == nil {
			next.on = v > 0 // zigbee2mqtt turns the bulb on (or off at 0) with brightness alone
		}
	}
	if c.ColorTemp != nil {
		v, err := integer("color_temp", *c.ColorTemp, MinColorTemp, MaxColorTemp)
		if err != nil {
			return err
		}
		next.colorTemp, next.colorMode = v, "color_temp"
	}
	if c.Color != nil {
		if c.Color.X == nil || c.Color.Y == nil {
			return fmt.Errorf("%w: color needs both x and y", ErrBulbCommand)
		}
		x, y := *c.Color.X, *c.Color.Y
		if !(x >= 0 && x <= 1 && y >= 0 && y <= 1) {
			return fmt.Errorf("%w: color x %v, y %v outside 0-1", ErrBulbCommand, x, y)
		}
		next.x, next.y, next.colorMode = x, y, "xy"
	}
	*b = next
	return nil
}

// integer checks that v is a whole number within [lo, hi].
func integer(key string, v float64, lo, hi int) (int, error) {
	if v != math.Trunc(v) || v < float64(lo) || v > float64(hi) {
		return 0, fmt.Errorf("%w: %s %v outside %d-%d", ErrBulbCommand, key, v, lo, hi)
	}
	return int(v), nil
}

// fields returns the state as zigbee2mqtt publishes it.
func (b *bulbState) fields() map[string]any {
	state := "OFF"
	if b.on {
		state = "ON"
	}
	return map[string]any{
		"state":      state,
		"brightness": b.brightness,
		"color_temp": b.colorTemp,
		"color_mode": b.colorMode,
		"color":      map[string]float64{"x": b.x, "y": b.y},
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
func itoa(v int) string     { return strconv.Itoa(v) }
