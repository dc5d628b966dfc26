package gateway

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRegistryAcrossGrowth checks every operation below and above the size
// where the inline list becomes maps, and that ids stay unique and stable.
func TestRegistryAcrossGrowth(t *testing.T) {
	var r registry
	ids := map[string]uint16{}
	for i := range 3 * smallRegistry {
		name := fmt.Sprintf("t/%d", i)
		id, ok := r.assign(name, i%2 == 0, 100)
		require.True(t, ok)
		for other, oid := range ids {
			require.NotEqual(t, oid, id, "id of %s reused for %s", other, name)
		}
		ids[name] = id
		for n, want := range ids {
			got, _, ok := r.idFor(n)
			require.True(t, ok, n)
			require.Equal(t, want, got, n)
			back, ok := r.lookup(want)
			require.True(t, ok)
			require.Equal(t, n, back)
		}
		again, _ := r.assign(name, true, 100)
		assert.Equal(t, id, again, "assigning a known name returns its id")
		_, known, _ := r.idFor(name)
		assert.True(t, known, "assign with known=true marks it known")
	}
	assert.Equal(t, 3*smallRegistry, r.len())

	r.unconfirmAll()
	for n := range ids {
		_, known, _ := r.idFor(n)
		assert.False(t, known, n)
	}
	r.forget(ids["t/3"])
	_, ok := r.lookup(ids["t/3"])
	assert.False(t, ok)
	_, _, ok = r.idFor("t/3")
	assert.False(t, ok)
	assert.Equal(t, 3*smallRegistry-1, r.len())
}

func TestRegistryLimitAndSmallForget(t *testing.T) {
	var r registry
	a, _ := r.assign("a", true, 2)
	_, _ = r.assign("b", true, 2)
	_, ok := r.assign("c", true, 2)
	assert.False(t, ok, "the per-client limit holds")
	r.forget(a)
	c, ok := r.assign("c", true, 2)
	require.True(t, ok)
	assert.NotEqual(t, uint16(0), c)
	r.refuse("x")
	assert.True(t, r.isRefused("x"))
	r.accept("x")
	assert.False(t, r.isRefused("x"))
	r.reset()
	assert.Zero(t, r.len())
}

func TestRegistryIDsWrapAroundAndSkipReserved(t *testing.T) {
	r := registry{next: maxTopicID - 1}
	a, _ := r.assign("a", true, 10)
	b, _ := r.assign("b", true, 10)
	assert.Equal(t, uint16(maxTopicID), a)
	assert.Equal(t, uint16(1), b, "0xFFFF and 0x0000 are never assigned")
}
