// Package mqttload is a load generator for MQTT brokers: publishers and
// subscribers over real TCP connections, speaking MQTT 3.1.1 through the
// broker core's own packet codec, measuring publish→subscribe throughput
// at QoS 0, 1 or 2.
//
// Run drives one broker at an address. The load is closed-loop: each
// publisher keeps at most Config.Window messages in flight end to end
// (published but not yet received by every subscriber), so the figure is
// the rate a broker sustains without dropping anything, and a run fails if
// a single message is lost. StartMosquitto, StartSnwgw and StartProcess
// run a broker as a child process on a loopback port, PeakRSS reads its
// peak resident memory and ReadIO the bytes it has written to storage, so
// that brokers can be compared under the same load in the same run (see
// the package's BenchmarkThroughput and BenchmarkPersistence, and
// docs/benchmarks.md). With Config.Persistent the subscribers' sessions
// are persistent, so a broker with persistence stores what it queues for
// them; MeasureToExit counts the bytes written per message from the start
// of the load until the broker has shut down.
package mqttload
