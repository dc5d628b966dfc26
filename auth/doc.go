// Package auth decides who may connect to snwgw and what they may do:
// a password file for MQTT clients, an ACL file for MQTT and MQTT-SN
// clients, an allowlist of MQTT-SN ClientIds bound to the addresses they
// may connect from, and a per-address rate limiter. Authorizer joins the
// password file and the ACL into the broker core's mqttcore.Authorizer.
//
// # Password file
//
// One "user:hash" per line, as mosquitto_passwd writes it. New hashes are
// bcrypt; Mosquitto's PBKDF2-SHA512 hashes ("$7$") are verified as they
// are, so an existing Mosquitto password file can be used unchanged.
// `snwgw passwd` adds, changes and deletes users. Once a password file is
// set, clients without a user name are refused unless allow_anonymous is
// turned on explicitly.
//
// # ACL file
//
// The syntax is Mosquitto's acl_file:
//
//	topic [read|write|readwrite|deny] <filter>
//	pattern [read|write|readwrite|deny] <filter>
//	user <name>
//
// The access defaults to readwrite when the line has no other word than
// the filter; with more words, the first must be one of the four accesses,
// so a misspelt one stops the file from loading (naming its line) rather
// than becoming a rule on a topic that holds a space, as Mosquitto does.
// A topic may hold spaces after its access ("topic read my topic"). In a pattern, %c stands for the client
// id and %u for the user name; a pattern whose value is missing or holds
// '/', '+' or '#' does not grant anything (and a deny pattern then denies,
// to fail closed). Rules before the first section line apply to every
// client, anonymous ones included (Mosquitto applies its leading topic
// lines to anonymous clients only). Rules after a section line apply to
// the clients that section names. MQTT-SN clients have no user name, so
// three more sections name them by what they do have:
//
//	client <clientid>     the MQTT client id or MQTT-SN ClientId
//	identity <name>       the DTLS PSK identity or verified certificate CN
//	link <name>           every client of a link or listener ("dtls", "udp", "tcp", ...)
//
// A client gets the rules of every section that names it, plus the
// global ones. A deny rule that matches wins over every grant; otherwise
// one matching grant suffices, and no grant means refused.
//
// Publishing to a topic needs write on a filter matching it, and
// receiving a message needs read on a filter matching its topic: the
// broker asks for every message it delivers, retained ones included. A
// subscription is therefore refused only when nothing could ever come
// through it, as in Mosquitto: when no read rule overlaps its filter, or
// a deny rule covers all of it. With "topic read #" and "topic deny
// sensors/secret/#", a subscription to "#" or "sensors/+/x" is granted and
// the messages under sensors/secret/ are held back one by one, while one
// to "sensors/secret/#" is refused. A shared subscription
// "$share/group/filter" is judged by its filter; a message held back from
// the member chosen for it is not offered to another. Wildcards at the
// first level never match topics beginning with '$' (MQTT 5 §4.7.2), so
// "#" grants nothing under "$SYS".
//
// An example:
//
//	# Everybody may read the gateway's status.
//	topic read $SYS/broker/#
//	# Every client may publish under its own client id and read commands for it.
//	pattern write sensors/%c/#
//	pattern read commands/%c/#
//
//	user dashboard
//	topic read sensors/#
//	topic write commands/#
//
//	# An MQTT-SN sensor that may also read the time.
//	client kitchen-temp
//	topic read time/now
//
//	# Whoever holds the PSK "site-a" speaks for site A.
//	identity site-a
//	topic readwrite site-a/#
//
//	# Nothing from the plain UDP link may touch actuators.
//	link udp
//	topic deny actuators/#
//
// # ClientId allowlist
//
// MQTT-SN 1.2 carries no credentials, so on plain links the gateway can
// only trust where a packet comes from. The allowlist names the ClientIds
// that may connect and, for each, the addresses, networks, XBee modules or
// DTLS identities it may connect from (see ParseAllowlist), so that a
// device cannot take over another's ClientId from elsewhere. The ClientId
// is also what ACL patterns and "client" sections know a sensor by, so
// WithAllowlist holds MQTT clients to the same bindings (see
// Allowlist.AllowMQTT).
package auth
