package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authzconfig"
)

func objects() []client.Object {
	return []client.Object{
		&v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: "fabrikam.com"}, Spec: v1alpha1.PartnerOrganizationSpec{Domain: "fabrikam.com", DisplayName: "Fabrikam"}},
		&v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: "contoso.com"}, Spec: v1alpha1.PartnerOrganizationSpec{Domain: "contoso.com", DisplayName: "Contoso"}},
		// A link whose registration went in a race: the webhook still
		// decides that domain, so its names must still reach it.
		&v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "northwind", Namespace: "tenant-a"}, Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "northwind.example"}},
		&v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "tenant-b"}, Spec: v1alpha1.PartnerLinkSpec{PartnerDomain: "contoso.com"}},
	}
}

func newScheme(t *testing.T) *runtime.Scheme {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}

func TestPrintAuthorizationConfig(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).WithObjects(objects()...).Build()
	var out bytes.Buffer
	if err := printAuthorizationConfig(context.Background(), c, &out, authzconfig.Options{WebhookKubeconfig: "/srv/partner-operator/authorization-webhook.kubeconfig"}); err != nil {
		t.Fatal(err)
	}
	want, err := authzconfig.Render([]string{"contoso.com", "fabrikam.com", "northwind.example"},
		authzconfig.Options{WebhookKubeconfig: "/srv/partner-operator/authorization-webhook.kubeconfig"})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("printed\n%s\nwant the configuration of every registration and link domain\n%s", out.String(), want)
	}
}

func TestPrintsNothingWithoutEveryDomain(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(newScheme(t)).WithObjects(objects()...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, links := list.(*v1alpha1.PartnerLinkList); links {
				return errors.New("forbidden")
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	var out bytes.Buffer
	err := printAuthorizationConfig(context.Background(), c, &out, authzconfig.Options{})
	if err == nil || !strings.Contains(err.Error(), "PartnerLinks") {
		t.Errorf("error %v, want one naming the PartnerLinks it could not list", err)
	}
	if out.Len() > 0 {
		t.Errorf("printed a configuration without the links' domains:\n%s", out.String())
	}
}
