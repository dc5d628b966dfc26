// Package archtest holds the dependency directions of docs/ARCHITECTURE.md
// in tests: each package's test calls Imports with the module packages and
// third-party modules it may use, and fails on anything else.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is the module path of this repository.
const Module = "github.com/snwgw/snwgw"

// Imports fails tb if the package pkg (an import path) breaks the
// architecture's directions:
//
//   - every package of this module that pkg depends on, directly or through
//     others, must be pkg itself, one of its subpackages, or start with an
//     allowed prefix;
//   - every third-party package that pkg imports directly must start with
//     an allowed prefix. What an allowed package pulls in is that package's
//     business, checked by its own test.
//
// Test-only dependencies are not considered.
func Imports(tb testing.TB, pkg string, allowed ...string) {
	tb.Helper()
	allowed = append(allowed, pkg)
	deps := goList(tb, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
	for _, dep := range deps {
		if inModule(dep) && !permitted(dep, allowed) {
			tb.Errorf("%s must not depend on %s (allowed: %v)", pkg, dep, allowed)
		}
	}
	direct := goList(tb, "-f", `{{join .Imports "\n"}}`, pkg)
	std := map[string]bool{}
	for _, p := range goList(tb, "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", "std") {
		std[p] = true
	}
	for _, imp := range direct {
		if !std[imp] && !inModule(imp) && !permitted(imp, allowed) {
			tb.Errorf("%s must not import %s (allowed: %v)", pkg, imp, allowed)
		}
	}
}

func goList(tb testing.TB, args ...string) []string {
	tb.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

func inModule(p string) bool { return p == Module || strings.HasPrefix(p, Module+"/") }

func permitted(dep string, allowed []string) bool {
	for _, a := range allowed {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return true
		}
	}
	return false
}
