#!/usr/bin/env bash
# Runs each fuzz target of each package for $FUZZTIME (default 10s).
# go test accepts only one -fuzz target per run, so targets are found with
# -list and run one after another; new crashers land in testdata/fuzz.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
cd "$(dirname "$0")/.."
count=0
for pkg in $($GO list ./...); do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($FUZZTIME)"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
		count=$((count + 1))
	done
done
echo "fuzz: $count targets, $FUZZTIME each"
