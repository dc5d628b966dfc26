// Package packaging holds the tests of what ships around the binary: the
// systemd unit in deploy/, the Debian packages scripts/deb.sh builds and the
// Dockerfile. It has no code of its own.
//
// The tests check packages without installing them: dpkg-deb reads and
// extracts them, systemd-analyze verifies the unit, and the extracted binary
// runs on its extracted configuration. With SNWGW_DEB_DIR set to a directory
// (as .ci/run sets it after make deb), TestDeb checks every package there
// instead of building one.
package packaging
