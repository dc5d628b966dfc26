// Package websocket carries MQTT over WebSocket (RFC 6455), as MQTT 5.0 §6
// and MQTT 3.1.1 §6 describe it, for the broker core's listeners.
//
// Listen opens an HTTP (or, with a TLS configuration, HTTPS) server whose
// upgraded connections come out of the listener's Accept as net.Conns, so
// that mqttcore's Broker.Serve serves them exactly as it serves TCP:
//
//	l, err := websocket.Listen("tcp", ":8083", websocket.Options{})
//	...
//	err = broker.Serve(l, mqttcore.ListenerOptions{Name: "ws " + l.Addr().String()})
//
// Each connection is a byte stream over binary messages: Read runs across
// message boundaries (an MQTT packet may be split over several messages,
// and a message may hold several packets), and every Write is sent as one
// binary message. Frames are parsed by github.com/gorilla/websocket; this
// package adds the MQTT rules on top:
//
//   - the handshake is refused (HTTP 404) on any path but Options.Path;
//   - the client must offer the subprotocol "mqtt" (MQTT 5 §6 [MQTT-6.0.0-3],
//     MQTT 3.1.1 [MQTT-6.0.0-3]) or "mqttv3.1", which MQTT 3.1 clients use;
//     the server answers with the one it chose ("mqtt" when both are
//     offered). A client offering neither gets HTTP 400;
//   - a text message closes the connection with status 1003, since MQTT
//     packets travel in binary messages only [MQTT-6.0.0-1];
//   - a message above Options.MaxMessageSize closes the connection with
//     status 1009. Messages are streamed, never buffered whole, so memory
//     per connection stays at the read and write buffers whatever clients
//     send.
//
// Closing follows the WebSocket closing handshake: CloseWrite (which the
// broker calls when it ends a connection) sends a close frame with status
// 1000 and leaves the read side open until the client answers with its own;
// Close sends the close frame if it has not gone yet, then closes the socket.
// A close frame from the client reads as io.EOF.
//
// Over TLS, a connection's ConnectionState reports the handshake, so the
// broker sees a verified client certificate exactly as on a TLS listener
// (mqttcore.ListenerOptions.UseIdentityAsUsername works over wss).
//
// Origins: by default every Origin is accepted, as Mosquitto and EMQX do.
// The check browsers leave to servers protects web applications that
// authenticate with ambient credentials, cookies above all; an MQTT broker
// authenticates each connection in its CONNECT packet, which a foreign page
// cannot forge for the user. Two cases call for Options.CheckOrigin all the
// same: clients that hold TLS client certificates in a browser (the browser
// presents them to any page that connects), and a broker that relies on its
// network position instead of credentials (a browser inside that network
// may be led to connect by any page it opens).
package websocket
