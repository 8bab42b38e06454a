// Package changecontrol holds what the admission webhooks and the
// PartnerChangeRequest controller share about a held change: the request's
// name, and the check that its requester may still make the write.
package changecontrol

import (
	"context"
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Requester is the user whose write produced a change request, as the
// apiserver's userInfo gave it.
type Requester struct {
	Name   string
	Groups []string
}

// Recheck reports whether the requester may, at this moment, make the write
// the request holds on live (nil for a Create, or when the target is gone):
// the link, the role and the scope, all as a direct write of that user would
// be checked. A refusal is a *Refusal.
type Recheck func(ctx context.Context, who Requester, pcr *v1alpha1.PartnerChangeRequest, live client.Object) error

// Refusal is a Recheck's answer that the requester may not make the write;
// any other error is a failure to check.
type Refusal struct{ Message string }

func (r *Refusal) Error() string { return r.Message }

// IsRefusal reports whether err is a Recheck's refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}
