package operator

import (
	"strings"
	"testing"
)

func TestSoftMemoryLimitLeavesATenth(t *testing.T) {
	got, err := SoftMemoryLimit("536870912") // 512Mi, as a resourceFieldRef gives it
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(536870912 / 10 * 9); got != want {
		t.Errorf("got %d, want %d", got, want)
	}
}

func TestSoftMemoryLimitRejectsWhatIsNotBytes(t *testing.T) {
	for _, bad := range []string{"", "512Mi", "-1", "0"} {
		if _, err := SoftMemoryLimit(bad); err == nil || !strings.Contains(err.Error(), ContainerMemoryLimitEnv) {
			t.Errorf("%q: got %v, want an error naming %s", bad, err, ContainerMemoryLimitEnv)
		}
	}
}
