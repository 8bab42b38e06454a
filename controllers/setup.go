// Package controllers holds the reconcilers of the partner-operator.
package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options configure the controllers.
type Options struct{}

// The manager's RBAC, generated into config/rbac/role.yaml by `make manifests`.
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms;partnerinvitations;partnerlinks;partnerroles;roomassignments,verbs=get;list;watch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms;partnerinvitations;partnerlinks,verbs=update;patch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerroles;roomassignments,verbs=create;update;patch;delete
// +kubebuilder:rbac:groups=partners.roompro.io,resources=rooms/status;partnerinvitations/status;partnerlinks/status;partnerroles/status;roomassignments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=partners.roompro.io,resources=partnerlinks/finalizers,verbs=update
// +kubebuilder:rbac:groups=core;events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers every controller with the manager.
//
// The foundation registers none yet: the lifecycle controllers (invitation
// expiry, acceptance, room scoping, offboarding) come with the next issue.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	return nil
}
