//go:build tools

// Package tools pins the kube-apiserver and kubectl main packages so that
// `go mod tidy` records every dependency they need to build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
