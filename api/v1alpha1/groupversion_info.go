// Package v1alpha1 contains the partners.roompro.io/v1alpha1 API: the rooms of
// a customer tenant and the resources that delegate their management to
// partner organisations.
//
// +kubebuilder:object:generate=true
// +groupName=partners.roompro.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "partners.roompro.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	// It is apimachinery's, not controller-runtime's (deprecated for API
	// packages): importing the API pulls in no controller machinery.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, kinds...)
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// kinds are the objects of this package; each kind's file adds its own.
var kinds []runtime.Object

func register(objs ...runtime.Object) { kinds = append(kinds, objs...) }
