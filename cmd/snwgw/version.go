package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and revision are set at link time by `make build` and `make dist`
// (-ldflags "-X main.version=… -X main.revision=…"). The revision falls back
// to the VCS stamp the go command records in the binary, which `go run` and
// builds with -buildvcs=false leave out.
var (
	version  = "dev"
	revision = ""
)

// buildInfo describes the running binary.
type buildInfo struct {
	Version   string
	GoVersion string
	Revision  string // "" when the build recorded none
	Modified  bool   // the work tree had uncommitted changes
}

func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, GoVersion: runtime.Version(), Revision: revision}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if bi.Revision == "" {
				bi.Revision = s.Value
			}
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	if bi.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		bi.Version = info.Main.Version
	}
	return bi
}

func (bi buildInfo) String() string {
	rev := bi.Revision
	switch {
	case rev == "":
		rev = "unknown (built without VCS information)"
	case bi.Modified:
		rev += " (modified)"
	}
	return fmt.Sprintf("snwgw %s\ngo: %s %s/%s\nrevision: %s\n", bi.Version, bi.GoVersion, runtime.GOOS, runtime.GOARCH, rev)
}

func runVersion(args []string, stdout io.Writer) error {
	if isHelp(args) {
		return helpRequested{"usage: snwgw version\n\nPrints the version, the Go version and the build's VCS revision.\n"}
	}
	if len(args) > 0 {
		return usageError{fmt.Sprintf("version takes no arguments, got %q", args)}
	}
	_, err := io.WriteString(stdout, readBuildInfo().String())
	return err
}
