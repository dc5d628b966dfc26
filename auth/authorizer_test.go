package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
)

func TestAuthorizerConnect(t *testing.T) {
	pw := NewPasswords()
	require.NoError(t, pw.Set("alice", []byte("pw")))
	anon := mqttcore.ClientInfo{ClientID: "c"}
	alice := mqttcore.ClientInfo{ClientID: "c", Username: "alice"}
	for _, tc := range []struct {
		name     string
		opts     Options
		ci       mqttcore.ClientInfo
		password string
		want     bool
	}{
		{"no file: anonymous allowed", Options{}, anon, "", true},
		{"no file: a user name cannot be verified", Options{}, alice, "pw", false},
		{"no file, anonymous off", Options{Anonymous: AnonymousDeny}, anon, "", false},
		{"file: anonymous refused by default", Options{Passwords: pw}, anon, "", false},
		{"file: anonymous allowed explicitly", Options{Passwords: pw, Anonymous: AnonymousAllow}, anon, "", true},
		{"file: right password", Options{Passwords: pw}, alice, "pw", true},
		{"file: wrong password", Options{Passwords: pw}, alice, "px", false},
		{"file: unknown user", Options{Passwords: pw}, mqttcore.ClientInfo{Username: "bob"}, "pw", false},
	} {
		a := NewAuthorizer(tc.opts)
		assert.Equal(t, tc.want, a.AllowConnect(tc.ci, []byte(tc.password)), tc.name)
	}
}

// TestAuthorizerIdentify shows how a link's knowledge reaches the
// decisions: a certificate standing for a user name, an MQTT-SN client
// authenticated by DTLS, both judged by the ACL under their identities.
func TestAuthorizerIdentify(t *testing.T) {
	pw := NewPasswords()
	require.NoError(t, pw.Set("alice", []byte("pw")))
	acl, err := ParseACL(strings.NewReader("identity meter-7\ntopic write meters/7/#\nlink dtls\ntopic read time\n"))
	require.NoError(t, err)
	byLink := map[string]Client{
		"meter": {ClientID: "meter", Identity: "meter-7", Link: "dtls", Preauthenticated: true},
	}
	a := NewAuthorizer(Options{Passwords: pw, ACL: acl, Identify: func(ci mqttcore.ClientInfo) Client {
		if c, ok := byLink[ci.ClientID]; ok {
			return c
		}
		return Client{ClientID: ci.ClientID, Username: ci.Username}
	}})
	meter := mqttcore.ClientInfo{ClientID: "meter"}
	assert.True(t, a.AllowConnect(meter, nil), "authenticated by its link")
	assert.True(t, a.AllowPublish(meter, "meters/7/kwh"))
	assert.False(t, a.AllowPublish(meter, "meters/8/kwh"))
	assert.True(t, a.AllowSubscribe(meter, "time"))
	assert.False(t, a.AllowSubscribe(meter, "meters/#"))
	other := mqttcore.ClientInfo{ClientID: "other"}
	assert.False(t, a.AllowConnect(other, nil), "anonymous refused with a password file")
	assert.False(t, a.AllowPublish(other, "meters/7/kwh"))
}

func TestAuthorizerWithoutACL(t *testing.T) {
	a := NewAuthorizer(Options{})
	ci := mqttcore.ClientInfo{ClientID: "x"}
	assert.True(t, a.AllowPublish(ci, "any/topic"))
	assert.True(t, a.AllowSubscribe(ci, "#"))
}

func TestAccessString(t *testing.T) {
	for a, s := range map[Access]string{Read: "read", Write: "write", ReadWrite: "readwrite", Deny: "deny", 0: "access(0)"} {
		assert.Equal(t, s, a.String())
	}
}
