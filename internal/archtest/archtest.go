// Package archtest holds the dependency directions of docs/ARCHITECTURE.md
// in tests: each package's test calls Imports with the module-internal and
// third-party import paths it may use, and fails on anything else.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is the module path of this repository.
const Module = "github.com/snwgw/snwgw"

// Imports fails tb if the package pkg (an import path) depends, directly or
// transitively, on a non-standard-library package that does not start with
// one of the allowed prefixes. The package itself and its own subpackages
// are always allowed. Test-only dependencies are not considered.
func Imports(tb testing.TB, pkg string, allowed ...string) {
	tb.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		tb.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	allowed = append(allowed, pkg)
	for _, dep := range strings.Fields(string(out)) {
		if !permitted(dep, allowed) {
			tb.Errorf("%s must not depend on %s (allowed: %v)", pkg, dep, allowed)
		}
	}
}

func permitted(dep string, allowed []string) bool {
	for _, a := range allowed {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return true
		}
	}
	return false
}
