package mqttcore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSentinelsMatchTheirReasonCodes: an error may be tested against the
// sentinel or the reason code, and ReasonFor agrees with both.
func TestSentinelsMatchTheirReasonCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code ReasonCode
	}{
		{ErrNotAuthorized, ReasonNotAuthorized},
		{ErrInvalidClientID, ReasonClientIDNotValid},
		{ErrInvalidTopic, ReasonTopicNameInvalid},
		{ErrInvalidFilter, ReasonTopicFilterInvalid},
		{ErrProtocol, ReasonProtocolError},
		{ErrPacketIDNotFound, ReasonPacketIDNotFound},
		{ErrReceiveMaximumExceeded, ReasonReceiveMaximumExceeded},
		{ErrClosed, ReasonServerShuttingDown},
	} {
		wrapped := fmt.Errorf("context: %w", tc.err)
		assert.ErrorIs(t, wrapped, tc.code, "%v", tc.err)
		assert.ErrorIs(t, wrapped, tc.err)
		assert.Equal(t, tc.code, ReasonFor(wrapped))
		assert.NotErrorIs(t, wrapped, ReasonQuotaExceeded)
	}
	assert.False(t, errors.Is(ErrNotAuthorized, ErrInvalidClientID))
	assert.Equal(t, ReasonUnspecifiedError, ReasonFor(ErrSessionClosed))
}
