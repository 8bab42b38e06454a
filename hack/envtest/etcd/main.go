// Command etcd is the etcd server, built from the Go module proxy so that the
// envtest control plane needs no download from anywhere else.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
