#!/usr/bin/env bash
# Builds the control-plane binaries that envtest and `make run` use — etcd,
# kube-apiserver, kube-controller-manager and kubectl — from the Go module
# proxy at the versions pinned in hack/envtest/*/go.mod, and caches them under
# bin/k8s/<version>/. Nothing is downloaded from anywhere but the Go module
# proxy. A binary that is present is not built again; when all four are, it
# does nothing. The last line printed is the directory
# that holds them (what KUBEBUILDER_ASSETS wants).
set -euo pipefail
# The Go of the project (see the Makefile), fetched from the Go module proxy
# when the machine has an older one.
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kube_version="v1.37.2"     # keep in step with k8s.io/kubernetes in hack/envtest/kube/go.mod
etcd_version="v3.7.3"      # keep in step with go.etcd.io/etcd/server/v3 in hack/envtest/etcd/go.mod
dest="${root}/bin/k8s/${kube_version}"

build() { # build NAME MODULE_DIR PACKAGE [LDFLAGS]
	local name="$1" dir="$2" pkg="$3" ldflags="${4:-}"
	if [[ -x "${dest}/${name}" ]]; then
		return
	fi
	echo "building ${name} (once; kube-apiserver and kube-controller-manager take several minutes each on 2 cores)..." >&2
	local tmp="${dest}/.${name}.tmp"
	(cd "${dir}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w ${ldflags}" -o "${tmp}" "${pkg}")
	mv "${tmp}" "${dest}/${name}" # atomic: an interrupted build leaves no half binary behind
}

mkdir -p "${dest}"

version_flags="-X k8s.io/component-base/version.gitVersion=${kube_version}"
version_flags+=" -X k8s.io/client-go/pkg/version.gitVersion=${kube_version}"
version_flags+=" -X k8s.io/component-base/version.gitMajor=${kube_version:1:1}"
minor="${kube_version#v*.}"
version_flags+=" -X k8s.io/component-base/version.gitMinor=${minor%%.*}"

build etcd "${root}/hack/envtest/etcd" . "-X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_version}"
build kube-apiserver "${root}/hack/envtest/kube" k8s.io/kubernetes/cmd/kube-apiserver "${version_flags}"
build kubectl "${root}/hack/envtest/kube" k8s.io/kubernetes/cmd/kubectl "${version_flags}"
# The namespace and garbage-collector controllers of a real cluster
# (internal/controlplane's Options.ControllerManager).
build kube-controller-manager "${root}/hack/envtest/kube" k8s.io/kubernetes/cmd/kube-controller-manager "${version_flags}"

echo "${dest}"
