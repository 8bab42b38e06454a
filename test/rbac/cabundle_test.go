package rbac

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/testenv"
)

// The operator's webhook configurations and its serving certificate's
// Secret, as config/default names them.
const (
	mutatingName   = "partner-operator-mutating-webhook-configuration"
	validatingName = "partner-operator-validating-webhook-configuration"
	certSecret     = "partner-operator-webhook-server-cert"
)

// With the roles and the ValidatingAdmissionPolicy of config/default, the
// operator's ServiceAccount keeps the caBundle of its webhook configurations
// current (the self-signed provisioning, issuing and renewing, uses every
// verb of its roles and nothing is refused), and can change nothing else of
// them, not even when RBAC grants it every verb on every webhook
// configuration; everyone else is unaffected.
func TestTheOperatorChangesOnlyTheCABundle(t *testing.T) {
	recorder := recordAuthorizations(t)
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{Webhooks: true, AuthorizationConfig: recorder.authorizationConfig(t)})
	deployed := render(t, "config/default")
	create(t, admin, kinds(deployed, append(slices.Clone(rbacObjects),
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")...))

	refused := &refusals{}
	provisionerConfig := serviceAccountConfig(t, cp, operatorNamespace, operatorServiceAccount)
	provisionerConfig.Wrap(refused.wrap)
	provisionerClient, err := client.New(provisionerConfig, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := client.New(serviceAccountConfig(t, cp, operatorNamespace, operatorServiceAccount), client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}

	// The policy takes effect once the apiserver has seen it: until a
	// change beyond the caBundle is refused (in a dry run, which stores
	// nothing), nothing it allows proves anything.
	eventually(t, 30*time.Second, "the policy takes effect", func() error {
		err := patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].TimeoutSeconds = ptr.To[int32](29)
		}, client.DryRunAll)
		if refusedByThePolicy(err) {
			return nil
		}
		return fmt.Errorf("a dry-run change of timeoutSeconds: %v", err)
	})

	clock := clocktesting.NewFakeClock(time.Now())
	provisioner := &certs.Provisioner{
		Client: provisionerClient, Clock: clock, Namespace: operatorNamespace, SecretName: certSecret,
		DNSNames: []string{"partner-operator-webhook-service.partner-operator-system.svc"}, CertDir: t.TempDir(),
		MutatingWebhookConfiguration: mutatingName, ValidatingWebhookConfiguration: validatingName,
	}
	for _, step := range []string{"issuing", "renewing"} {
		next, err := provisioner.Ensure(ctx)
		if err != nil {
			t.Fatalf("%s the certificate as the operator's ServiceAccount: %v", step, err)
		}
		checkCABundles(t, admin, step)
		clock.SetTime(next.Add(time.Minute))
	}
	for _, r := range refused.list() {
		t.Errorf("refused: %s", r)
	}
	checks := recorder.checks()
	for _, g := range grants(t, deployed) {
		if slices.Contains(provisioningRoles, g.role) && !slices.ContainsFunc(checks, g.usedBy) {
			t.Errorf("granted, never used: %s", g)
		}
	}

	// What a compromised manager pod would try: every one is refused, and
	// nothing changes.
	abuse := map[string]error{
		"a rule for pods and secrets": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].Rules = append(c.Webhooks[0].Rules, admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "secrets"}},
			})
		}),
		"a mutating rule for pods": patchMutating(sa, func(c *admissionregistrationv1.MutatingWebhookConfiguration) {
			c.Webhooks[0].Rules[0].Resources = append(c.Webhooks[0].Rules[0].Resources, "pods")
		}),
		"failurePolicy Ignore": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
		}),
		"another server": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].ClientConfig.Service = nil
			c.Webhooks[0].ClientConfig.URL = new("https://attacker.example.com/validate")
		}),
		"another path": patchMutating(sa, func(c *admissionregistrationv1.MutatingWebhookConfiguration) {
			c.Webhooks[0].ClientConfig.Service.Path = new("/elsewhere")
		}),
		"a namespaceSelector that exempts a namespace": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"audited": "never"}}
		}),
		"a webhook dropped": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks = c.Webhooks[1:]
		}),
		"a webhook added": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			extra := *c.Webhooks[0].DeepCopy()
			extra.Name = "vextra.partners.roompro.io"
			c.Webhooks = append(c.Webhooks, extra)
		}),
		"an annotation (cert-manager's CA injection from another certificate)": patchValidating(sa, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Annotations = map[string]string{"cert-manager.io/inject-ca-from": "elsewhere/attacker"}
		}),
		"a label": patchMutating(sa, func(c *admissionregistrationv1.MutatingWebhookConfiguration) {
			c.Labels = map[string]string{"x": "y"}
		}),
	}
	for what, err := range abuse {
		if !refusedByThePolicy(err) {
			t.Errorf("%s: %v, want a refusal by the policy", what, err)
		}
	}

	// Even when RBAC grants the ServiceAccount every verb on every webhook
	// configuration, it creates none, deletes none and changes no other's.
	if err := admin.Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "too-much"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"},
			Verbs: []string{"get", "list", "create", "update", "patch", "delete"},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "too-much"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "too-much"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: operatorServiceAccount}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the ServiceAccount may list webhook configurations", func() error {
		return sa.List(ctx, &admissionregistrationv1.ValidatingWebhookConfigurationList{})
	})
	own := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := admin.Get(ctx, client.ObjectKey{Name: validatingName}, own); err != nil {
		t.Fatal(err)
	}
	created := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "partner-operator-extra"}, Webhooks: own.Webhooks,
	}
	for what, err := range map[string]error{
		"creating a webhook configuration": sa.Create(ctx, created),
		"deleting its own":                 sa.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mutatingName}}),
		"changing another's caBundle": func() error {
			other := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := sa.Get(ctx, client.ObjectKey{Name: "validating-webhook-configuration"}, other); err != nil { // the local control plane's
				return err
			}
			before := other.DeepCopy()
			other.Webhooks[0].ClientConfig.CABundle = []byte("not a CA")
			return sa.Patch(ctx, other, client.MergeFrom(before))
		}(),
		"an update (not a patch) that adds a rule": func() error {
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := sa.Get(ctx, client.ObjectKey{Name: validatingName}, c); err != nil {
				return err
			}
			c.Webhooks[0].Rules[0].Resources = append(c.Webhooks[0].Rules[0].Resources, "secrets")
			return sa.Update(ctx, c)
		}(),
	} {
		if !refusedByThePolicy(err) {
			t.Errorf("%s: %v, want a refusal by the policy", what, err)
		}
	}
	// An update of the caBundle alone is allowed, as a patch is.
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := sa.Get(ctx, client.ObjectKey{Name: validatingName}, c); err != nil {
		t.Fatal(err)
	}
	for i := range c.Webhooks {
		c.Webhooks[i].ClientConfig.CABundle = own.Webhooks[0].ClientConfig.CABundle
	}
	if err := sa.Update(ctx, c); err != nil {
		t.Errorf("an update of the caBundle alone: %v", err)
	}

	after := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := admin.Get(ctx, client.ObjectKey{Name: validatingName}, after); err != nil {
		t.Fatal(err)
	}
	if len(after.Webhooks) != len(own.Webhooks) || len(after.Webhooks[0].Rules) != len(own.Webhooks[0].Rules) ||
		len(after.Webhooks[0].Rules[0].Resources) != len(own.Webhooks[0].Rules[0].Resources) || len(after.Annotations) != 0 {
		t.Errorf("the configuration changed: %+v", after)
	}

	// The policy is the operator's only: an admin changes the rules.
	if err := patchValidating(admin, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
		c.Webhooks[0].TimeoutSeconds = ptr.To[int32](7)
	}); err != nil {
		t.Errorf("an admin's change of timeoutSeconds: %v", err)
	}
}

// refusedByThePolicy reports whether err is the policy's refusal.
func refusedByThePolicy(err error) bool {
	return (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) &&
		strings.Contains(err.Error(), "partner-operator-webhook-cabundle-only") &&
		strings.Contains(err.Error(), "may change only the caBundle")
}

func patchValidating(c client.Client, change func(*admissionregistrationv1.ValidatingWebhookConfiguration), opts ...client.PatchOption) error {
	return patchConfiguration(c, validatingName, change, opts...)
}

func patchMutating(c client.Client, change func(*admissionregistrationv1.MutatingWebhookConfiguration), opts ...client.PatchOption) error {
	return patchConfiguration(c, mutatingName, change, opts...)
}

// patchConfiguration merge-patches the webhook configuration name with change.
func patchConfiguration[T any, P interface {
	*T
	client.Object
}](c client.Client, name string, change func(P), opts ...client.PatchOption) error {
	obj := P(new(T))
	if err := c.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		return err
	}
	before := obj.DeepCopyObject().(client.Object)
	change(obj)
	return c.Patch(ctx, obj, client.MergeFrom(before), opts...)
}

// checkCABundles: every webhook of both configurations trusts the CA in
// the provisioner's Secret.
func checkCABundles(t *testing.T, admin client.Client, step string) {
	t.Helper()
	secret := &corev1.Secret{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: certSecret}, secret); err != nil {
		t.Fatal(err)
	}
	ca := secret.Data["ca.crt"]
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := errors.Join(admin.Get(ctx, client.ObjectKey{Name: mutatingName}, m), admin.Get(ctx, client.ObjectKey{Name: validatingName}, v)); err != nil {
		t.Fatal(err)
	}
	var bundles [][]byte
	for _, w := range m.Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	for i, b := range bundles {
		if len(ca) == 0 || !bytes.Equal(b, ca) {
			t.Errorf("%s: webhook %d does not trust the Secret's CA", step, i)
		}
	}
}
