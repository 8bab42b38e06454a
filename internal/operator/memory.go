package operator

import (
	"fmt"
	"strconv"
)

// ContainerMemoryLimitEnv names the variable through which config/manager
// passes the container's memory limit, in bytes (a resourceFieldRef).
const ContainerMemoryLimitEnv = "CONTAINER_MEMORY_LIMIT"

// SoftMemoryLimit returns the Go runtime's soft memory limit for a
// container limit of containerLimit bytes: nine tenths of it. The runtime's
// limit does not count all that the kernel charges the container (the
// binary's pages, memory the runtime has freed but not yet returned), so a
// limit equal to the container's still let the manager's RSS pass it
// (BENCHMARKS.md, 100,000 rooms). The Go GC guide advises such headroom.
func SoftMemoryLimit(containerLimit string) (int64, error) {
	limit, err := strconv.ParseInt(containerLimit, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("%s=%q: want the container's memory limit in bytes, a positive integer", ContainerMemoryLimitEnv, containerLimit)
	}
	return limit / 10 * 9, nil
}
