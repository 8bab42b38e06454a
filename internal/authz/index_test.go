package authz

import (
	"testing"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// TestEveryPermissionHasItsOwnBit: a permission that bitOf forgets holds
// nothing, whatever the roles say; the model test notices only when a
// random request happens to need it and a role happens to hold it.
func TestEveryPermissionHasItsOwnBit(t *testing.T) {
	var seen permissionSet
	for _, p := range v1alpha1.AllPermissions {
		bit := bitOf(p)
		if bit == 0 || seen&bit != 0 {
			t.Errorf("permission %s: bit %#x, already taken: %#x", p, bit, seen)
		}
		seen |= bit
	}
}
