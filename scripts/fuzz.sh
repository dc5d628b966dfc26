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
		log=$(mktemp)
		if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" 2>&1 | tee "$log"; then
			# The go command sometimes ends a run that found nothing with
			# "context deadline exceeded" when the time runs out while a
			# worker is busy; only a written failing input is a finding.
			if grep -q "Failing input written to" "$log" || ! grep -q "context deadline exceeded" "$log"; then
				rm -f "$log"
				exit 1
			fi
			echo "fuzz: $target ended at its deadline while a worker was busy; no failing input"
		fi
		rm -f "$log"
		count=$((count + 1))
	done
done
echo "fuzz: $count targets, $FUZZTIME each"
