//go:build race

package gateway

// raceEnabled is set when the race detector runs, which changes allocation
// sizes and slows everything tenfold: memory measurements skip.
const raceEnabled = true
