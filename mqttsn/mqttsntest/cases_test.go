package mqttsntest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/snwgw/snwgw/internal/archtest"
	"github.com/snwgw/snwgw/mqttsn/mqttsntest"
)

func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/mqttsn/mqttsntest", "github.com/snwgw/snwgw/mqttsn")
}

// TestNamesUnique keeps each table's names usable as subtest names.
func TestNamesUnique(t *testing.T) {
	unique := func(table string, names []string) {
		seen := map[string]bool{}
		for _, n := range names {
			assert.False(t, seen[n], "%s: duplicate name %q", table, n)
			seen[n] = true
		}
	}
	var names []string
	for _, c := range mqttsntest.Cases {
		names = append(names, c.Name)
	}
	unique("Cases", names)
	names = nil
	for _, c := range mqttsntest.Malformed {
		names = append(names, c.Name)
	}
	unique("Malformed", names)
	names = nil
	for _, c := range mqttsntest.Unencodable {
		names = append(names, c.Name)
	}
	unique("Unencodable", names)
}
