package archtest

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestImportsCatchesViolations(t *testing.T) {
	// The gateway depends on mqttcore, a module package.
	r := &recorder{TB: t}
	Imports(r, Module+"/gateway", Module+"/mqttsn")
	if len(r.errors) == 0 {
		t.Error("a module package outside the allowed list was not reported")
	}
	// transport imports go.bug.st/serial directly.
	r = &recorder{TB: t}
	Imports(r, Module+"/transport", "golang.org/x/net", "golang.org/x/sys")
	if len(r.errors) == 0 {
		t.Error("a direct third-party import outside the allowed list was not reported")
	}
	// mqttsn is standard library only.
	r = &recorder{TB: t}
	Imports(r, Module+"/mqttsn")
	if len(r.errors) != 0 {
		t.Errorf("mqttsn reported: %v", r.errors)
	}
}
