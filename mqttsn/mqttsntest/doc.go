// Package mqttsntest holds named, annotated MQTT-SN 1.2 datagrams with the
// packets they decode to, malformed datagrams with the error they must
// produce, and packets that must not encode. The codec's own tests are
// driven by these tables, and so can the tests of anything that speaks
// MQTT-SN (gateway, simulator).
package mqttsntest
