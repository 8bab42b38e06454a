package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/scope"
)

// linkGrantsAccess reports whether a link's assignments put rooms in scope:
// only an Active link that is not being deleted does.
func linkGrantsAccess(link *v1alpha1.PartnerLink) bool {
	return link.Status.Phase == v1alpha1.LinkActive && link.DeletionTimestamp.IsZero()
}

// grantsIn returns the grants of every active link of the namespace, read
// from the cache. An assignment with a selector that does not compile grants
// nothing (the CRD and the webhook reject those; failing closed is right).
func grantsIn(ctx context.Context, c client.Reader, namespace string) ([]scope.Grant, error) {
	links := &v1alpha1.PartnerLinkList{}
	if err := c.List(ctx, links, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing PartnerLinks: %w", err)
	}
	domains := map[string]string{} // active link name -> partner domain
	for i := range links.Items {
		if linkGrantsAccess(&links.Items[i]) {
			domains[links.Items[i].Name] = string(links.Items[i].Spec.PartnerDomain)
		}
	}
	if len(domains) == 0 {
		return nil, nil
	}
	assignments := &v1alpha1.RoomAssignmentList{}
	if err := c.List(ctx, assignments, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing RoomAssignments: %w", err)
	}
	var grants []scope.Grant
	for i := range assignments.Items {
		a := &assignments.Items[i]
		domain, active := domains[a.Spec.PartnerLink]
		if !active || !a.DeletionTimestamp.IsZero() {
			continue
		}
		m, err := scope.Compile(a.Spec.Rooms)
		if err != nil {
			continue
		}
		grants = append(grants, scope.Grant{Domain: domain, Matcher: m})
	}
	return grants, nil
}
