#!/usr/bin/env bash
# Runs each fuzz target of each package for $FUZZTIME (default 10s).
# go test accepts only one -fuzz target per run, so targets are found with
# -list and run one after another; new crashers land in testdata/fuzz.
#
# A run that ends at its deadline has found nothing, yet go test sometimes
# fails it all the same:
#   - when the time runs out while the coordinator hands a worker its next
#     input, the deadline itself is reported as the target's failure, as
#     "context deadline exceeded" or wrapped in another message ("...:
#     context deadline exceeded"), with no input written;
#   - on a starved machine a worker can exceed the 10 seconds go test
#     allows one input; it is reported as "fuzzing process hung or
#     terminated unexpectedly" and its input is written as failing, though
#     it passes when run on its own.
# Neither fails this script. Anything else does: a failure the target
# reported, a failing seed, or a written input that fails when run again.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
cd "$(dirname "$0")/.."

# failure prints the error lines of target's "--- FAIL" block in log, one
# per line, without their indentation.
failure() {
	awk -v head="--- FAIL: $2 " '
		index($0, head) == 1 { inblock = 1; next }
		inblock && /^[ \t]/ { sub(/^[ \t]+/, ""); if ($0 != "") print; next }
		inblock { exit }
	' "$1"
}

# benign tells whether the failed run of target $2 in package $3, logged
# in $1, ended at its deadline without finding anything.
benign() {
	local log=$1 target=$2 pkg=$3 errors written id dir
	errors=$(failure "$log" "$target")
	if grep -q "failure while testing seed corpus entry" "$log"; then
		return 1
	fi
	written=$(sed -n 's/^[[:space:]]*Failing input written to //p' "$log")
	if [ -z "$written" ]; then
		# Every error line the deadline, and at least one.
		[ -n "$errors" ] && ! grep -qv "context deadline exceeded" <<<"$errors"
		return
	fi
	# A written input is a finding unless a worker died holding it and it
	# passes when run on its own.
	case $errors in
	"fuzzing process hung or terminated unexpectedly"*) ;;
	*) return 1 ;;
	esac
	id=$(basename "$written")
	if ! $GO test -timeout 5m -run "^${target}\$/^${id}\$" "$pkg"; then
		return 1
	fi
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	rm -f "$dir/$written"
	echo "fuzz: $target: the input $id of a worker stopped at the deadline passes on its own; removed"
}

count=0
for pkg in $($GO list ./...); do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($FUZZTIME)"
		log=$(mktemp)
		if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" 2>&1 | tee "$log"; then
			if ! benign "$log" "$target" "$pkg"; then
				rm -f "$log"
				exit 1
			fi
			echo "fuzz: $target ended at its deadline with nothing found"
		fi
		rm -f "$log"
		count=$((count + 1))
	done
done
echo "fuzz: $count targets, $FUZZTIME each"
