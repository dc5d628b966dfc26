// Package mqttload is a load generator for MQTT brokers: publishers and
// subscribers over real TCP connections, speaking MQTT 3.1.1 through the
// broker core's own packet codec, measuring publish→subscribe throughput
// at QoS 0, 1 or 2.
//
// Run drives one broker at an address. The load is closed-loop: each
// publisher keeps at most Config.Window messages in flight end to end
// (published but not yet received by every subscriber), so the figure is
// the rate a broker sustains without dropping anything, and a run fails if
// a single message is lost. StartMosquitto and StartProcess run a broker
// as a child process on a spare loopback port, and PeakRSS reads its peak
// resident memory, so that two brokers can be compared under the same load
// in the same run (see the package's BenchmarkThroughput and
// docs/benchmarks.md).
package mqttload
