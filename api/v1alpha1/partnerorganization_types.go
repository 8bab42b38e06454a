package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PartnerOrganizationSpec registers a partner organisation with the cluster.
type PartnerOrganizationSpec struct {
	// domain is the partner's DNS domain: its users are name@<domain>, its
	// groups <domain>:<group>. It must equal metadata.name, so that the
	// apiserver's uniqueness of names makes domains unique across
	// registrations, with no race between two platform engineers registering
	// the same domain at once. Immutable: register another organisation for
	// another domain.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="domain is immutable; register another PartnerOrganization for another domain"
	Domain Domain `json:"domain"`

	// displayName is the organisation's name as people know it, for example
	// "Contoso Ltd.".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`
}

// PartnerOrganizationStatus is maintained by the operator.
type PartnerOrganizationStatus struct {
	// invitations is how many PartnerInvitations in the cluster name the domain.
	// +optional
	Invitations int32 `json:"invitations"`

	// links is how many PartnerLinks in the cluster name the domain.
	// +optional
	Links int32 `json:"links"`

	// observedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True (reason Registered) once the operator treats
	// the domain as a partner domain.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PartnerOrganization registers a partner organisation, once, cluster-wide:
// only the domains of registrations are partner domains, and customers may
// invite only registered domains. It is written by the platform team (the
// ClusterRole partner-registrar), never by a tenant, so no tenant can change
// how another tenant's users are authorised.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=porg,categories=roompro
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.domain",message="must equal metadata.name: the name keeps domains unique across registrations",fieldPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Domain",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Invitations",type=integer,JSONPath=`.status.invitations`,priority=1
// +kubebuilder:printcolumn:name="Links",type=integer,JSONPath=`.status.links`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PartnerOrganization struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PartnerOrganizationSpec `json:"spec"`
	// +optional
	Status PartnerOrganizationStatus `json:"status,omitempty"`
}

// PartnerOrganizationList is a list of PartnerOrganizations.
// +kubebuilder:object:root=true
type PartnerOrganizationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PartnerOrganization `json:"items"`
}

func init() {
	register(&PartnerOrganization{}, &PartnerOrganizationList{})
}
