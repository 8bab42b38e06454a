//go:build tools

// Package tools pins the main packages that hack/setup-envtest.sh builds from
// this module — kube-apiserver, kube-controller-manager and kubectl — so that
// `go mod tidy` records every dependency they need to build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
