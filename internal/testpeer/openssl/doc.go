// Package openssl runs `openssl s_client` as an independent TLS and DTLS
// peer in tests. The test writes to the client's standard input and waits
// for its standard output: with -quiet, stdout carries only the
// application data the server sent, byte for byte, so binary protocols
// such as MQTT-SN can be spoken through it (one write to stdin becomes one
// read by s_client, hence one record, as long as the test waits for each
// answer before it writes again).
//
// A missing openssl binary skips the test, or fails it when
// SNWGW_REQUIRE_PEERS=1, as testpeer.Look decides.
package openssl
