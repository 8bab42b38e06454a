#!/usr/bin/env bash
# Runs every fuzz target of the module and of bench/ for FUZZTIME each
# (default 30s): `make fuzz FUZZTIME=30s`, which CI runs.
#
# Targets are found, not listed here: in every package whose test files
# declare a `func Fuzz...`, `go test -list '^Fuzz'` names them. (Listing runs
# a package's TestMain, and the envtest suites' TestMain starts a control
# plane, so packages without one are not asked.) `go test -fuzz` runs one
# target per invocation, without -race: the fuzzing engine's instrumentation
# and the race detector are not combined.
#
# A target that fails fails the run, after the others have run. Go writes
# the input that failed to <package>/testdata/fuzz/<target>/; `go test`
# then runs it as a seed of that target. Fix the code, and commit the input
# with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Go the project is built with (the Makefile says the same).
export GOTOOLCHAIN=go1.27.3
fuzztime=${FUZZTIME:-30s}

failed=()
ran=0
for module in . bench; do
	while read -r pkg dir; do
		grep -qsE '^func Fuzz[A-Z0-9_]' "$dir"/*_test.go || continue
		targets=$(cd "$module" && go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
		if [ -z "$targets" ]; then
			echo "fuzz: $pkg declares a fuzz target but go test lists none" >&2
			failed+=("$pkg (listing)")
			continue
		fi
		for target in $targets; do
			echo "fuzz: $pkg $target for $fuzztime"
			ran=$((ran + 1))
			if ! (cd "$module" && go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"); then
				failed+=("$pkg $target (failing input in ${dir#"$PWD"/}/testdata/fuzz/$target/)")
			fi
		done
	done < <(cd "$module" && go list -f '{{.ImportPath}} {{.Dir}}' ./...)
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz: no fuzz target found" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: $ran targets, $fuzztime each: no failure"
