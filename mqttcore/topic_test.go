package mqttcore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		topic string
		ok    bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},      // two empty levels
		{"a//b", true},   // empty level
		{"/a", true},     // leading empty level
		{"a/", true},     // trailing empty level
		{"$SYS/x", true}, // publishing rules for $ topics are not syntax
		{"a b/ü", true},  // spaces and UTF-8 are legal
		{"", false},      // MQTT 5 §4.7.3: at least one character
		{"a/+", false},   // no wildcards in topic names
		{"a/#", false},
		{"a+b", false},
		{"a\x00b", false}, // U+0000
		{"a\xffb", false}, // not UTF-8
		{strings.Repeat("a", MaxTopicLength), true},
		{strings.Repeat("a", MaxTopicLength+1), false},
	}
	for _, tt := range tests {
		err := ValidateTopic(tt.topic)
		if tt.ok {
			assert.NoError(t, err, "%q", tt.topic)
		} else {
			assert.ErrorIs(t, err, ErrInvalidTopic, "%q", tt.topic)
		}
	}
}

func TestValidateFilter(t *testing.T) {
	tests := []struct {
		filter string
		ok     bool
	}{
		{"#", true},
		{"+", true},
		{"a/#", true},
		{"a/+/b", true},
		{"+/+", true},
		{"/+", true},
		{"+/", true},
		{"a//b", true},
		{"$SYS/#", true},
		{"a/b#", false},  // '#' must take a whole level
		{"a/#/b", false}, // '#' must be last
		{"#/", false},
		{"a+", false}, // '+' must take a whole level
		{"+a", false},
		{"a/+b/c", false},
		{"", false},
		{"a\x00", false},
		{"\xc3", false},
		{"$share/g/a/b", true},
		{"$share/g/#", true},
		{"$share/g//", true},
		{"$share/g", false},    // no filter
		{"$share/g/", false},   // empty filter
		{"$share//a", false},   // empty group
		{"$share/g+/a", false}, // wildcard in group
		{"$share/g#/a", false}, // wildcard in group
		{"$share/g/a#", false}, // inner filter rules apply
		{"$shared/g/a", true},  // not the share prefix: an ordinary filter
		{"$share", true},       // likewise
		{strings.Repeat("a", MaxTopicLength+1), false},
	}
	for _, tt := range tests {
		err := ValidateFilter(tt.filter)
		if tt.ok {
			assert.NoError(t, err, "%q", tt.filter)
		} else {
			assert.ErrorIs(t, err, ErrInvalidFilter, "%q", tt.filter)
		}
	}
}

func TestParseShared(t *testing.T) {
	group, inner, err := ParseShared("$share/workers/jobs/+/new")
	assert.NoError(t, err)
	assert.Equal(t, "workers", group)
	assert.Equal(t, "jobs/+/new", inner)

	group, inner, err = ParseShared("jobs/#")
	assert.NoError(t, err)
	assert.Empty(t, group)
	assert.Equal(t, "jobs/#", inner)
}

func TestReasonFor(t *testing.T) {
	assert.Equal(t, ReasonSuccess, ReasonFor(nil))
	assert.Equal(t, ReasonTopicNameInvalid, ReasonFor(ValidateTopic("a/#")))
	assert.Equal(t, ReasonTopicFilterInvalid, ReasonFor(ValidateFilter("a#")))
	assert.Equal(t, ReasonNotAuthorized, ReasonFor(ErrNotAuthorized))
	assert.Equal(t, ReasonProtocolError, ReasonFor(ErrProtocol))
	assert.Equal(t, ReasonPacketIDNotFound, ReasonFor(ErrPacketIDNotFound))
	assert.Equal(t, ReasonReceiveMaximumExceeded, ReasonFor(ErrReceiveMaximumExceeded))
	assert.Equal(t, ReasonSessionTakenOver, ReasonFor(ReasonSessionTakenOver))
	assert.Equal(t, ReasonUnspecifiedError, ReasonFor(assert.AnError))
	assert.Equal(t, "session taken over", ReasonSessionTakenOver.String())
	assert.Equal(t, "reason code 0x03", ReasonCode(3).String())
}
