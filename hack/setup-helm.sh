#!/usr/bin/env bash
# Builds helm from helm.sh/helm/v4 at the version pinned in
# hack/tools/helm/go.mod (a tool module of its own, so that helm's
# dependencies stay out of the operator's go.mod and away from golangci-lint's
# in hack/tools/go.mod) into bin/helm/<version>/helm, from the Go module proxy.
# test/helm runs it. When the binary is present it does nothing. The last line
# printed is the binary's path.
set -euo pipefail
# The Go of the project (see the Makefile).
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="${root}/hack/tools/helm"
version="$(cd "${module}" && go list -m -f '{{.Version}}' helm.sh/helm/v4)"
dest="${root}/bin/helm/${version}"

if [[ ! -x "${dest}/helm" ]]; then
	echo "building helm ${version} (once; several minutes on 2 cores)..." >&2
	mkdir -p "${dest}"
	tmp="${dest}/.helm.tmp"
	(cd "${module}" && CGO_ENABLED=0 go build -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${version}" \
		-o "${tmp}" helm.sh/helm/v4/cmd/helm)
	mv "${tmp}" "${dest}/helm" # atomic: an interrupted build leaves no half binary behind
fi
echo "${dest}/helm"
