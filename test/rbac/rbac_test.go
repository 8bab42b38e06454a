// Package rbac runs the operator as its own ServiceAccount, with exactly the
// RBAC that config/default ships (the ClusterRole and Role generated from the
// kubebuilder markers, and the hand-written roles), against a real
// kube-apiserver, and compares what the apiserver authorised with what the
// roles grant: nothing the operator does may be refused, and every verb the
// roles grant must be one the operator used.
package rbac

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authzserver"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/freshness"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

// The samples' tenant and partnership (config/samples).
const (
	tenant = "fourth-coffee"
	link   = "contoso"
	domain = "contoso.com"
)

// provisioningRoles are the roles of the self-signed certificate
// provisioning, which this test does not run: TestTheOperatorChangesOnlyTheCABundle
// proves their every verb.
var provisioningRoles = []string{"Role partner-operator-cert-role", "ClusterRole partner-operator-cert-webhook-role"}

// notReached are the grants that the scenario cannot reach, and the call
// that needs each; a grant listed here that the scenario uses fails the
// test, so that the list stays true. (get partnerroles was one, for
// ensureChild's live read of a built-in role when an activation resumes;
// the change-control step reaches it: the change request controller and
// admission read a request's target role live.)
var notReached = map[string]string{}

// The operator runs through the README's walkthrough (config/samples:
// registration, invitation, acceptance, delegation, change control
// (change-control/: a held room patch approved and applied, a proposed role
// denied, a held role update approved and applied), a further assignment,
// an attempt to delete the built-in role and one to delete the
// registration, offboarding), with the initial assignment's name squatted
// while no replica leads, answers a portal backend's review, and stops;
// meanwhile the apiserver records every authorization check of its
// ServiceAccount. The apiserver enables OwnerReferencesPermissionEnforcement,
// as some distributions do, so that the children's owner references are
// checked too, and the informers list before they watch, as client-go does
// against an apiserver that cannot stream the initial list in a watch.
func TestTheShippedRolesAreWhatTheOperatorUses(t *testing.T) {
	clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
	managerLog := &testenv.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(managerLog), zap.UseDevMode(true)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the manager's log:\n%s", managerLog.String())
		}
	})
	recorder := recordAuthorizations(t)
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{
		Webhooks: true, AuthorizationConfig: recorder.authorizationConfig(t),
		AdmissionPlugins: []string{"OwnerReferencesPermissionEnforcement"},
	})
	deployed := render(t, "config/default")
	create(t, admin, kinds(deployed, rbacObjects...))
	create(t, admin, render(t, "config/customer-roles"))
	// A replica that is gone holds the leadership: until the test lets it
	// go, the manager serves the webhooks but does not reconcile.
	holdLeadership(t, admin)

	refused := &refusals{}
	cfg := serviceAccountConfig(t, cp, operatorNamespace, operatorServiceAccount)
	cfg.Wrap(refused.wrap)
	mgr, err := operator.New(ctx, cfg, operator.Options{
		AuditLog:       io.Discard,
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
		LeaderElection: &operator.LeaderElection{Namespace: operatorNamespace},
		Freshness:      freshness.Options{Namespace: operatorNamespace},
		// go test -count=2 runs the test twice in one process.
		SkipControllerNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	stopped := false
	stopManager := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-done; err != nil {
				t.Errorf("the manager: %v", err)
			}
		}
	}
	t.Cleanup(stopManager)

	walkthrough(t, cp, admin)
	// An Event that repeats is patched (its series) by the events library
	// the recorder uses: the same Event twice through the manager's
	// recorder, about an object that does not change meanwhile.
	org := &v1alpha1.PartnerOrganization{}
	if err := admin.Get(ctx, client.ObjectKey{Name: domain}, org); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		mgr.GetEventRecorder("rbac-test").Eventf(org, nil, corev1.EventTypeNormal, "Repeated", "Test", "the same Event twice")
	}
	eventually(t, 30*time.Second, "the repeated Event is patched", func() error {
		for _, a := range recorder.checks() {
			if a.Group == "events.k8s.io" && a.Resource == "events" && a.Verb == "patch" {
				return nil
			}
		}
		return errors.New("no patch of an events.k8s.io Event yet")
	})
	portalReview(t, cp, admin)
	offboard(t, admin)
	stopManager()

	for _, r := range refused.list() {
		t.Errorf("refused: %s", r)
	}
	checks := recorder.checks()
	for _, g := range grants(t, deployed) {
		if slices.Contains(provisioningRoles, g.role) {
			continue
		}
		if notReached[g.String()] != "" {
			if slices.ContainsFunc(checks, g.usedBy) {
				t.Errorf("listed in notReached, but used: %s", g)
			}
			continue
		}
		if !slices.ContainsFunc(checks, g.usedBy) {
			t.Errorf("granted, never used: %s", g)
		}
	}
	if t.Failed() {
		var seen []string
		for _, a := range checks {
			seen = append(seen, fmt.Sprintf("%s %s/%s.%s %s/%s", a.Verb, a.Resource, a.Subresource, a.Group, a.Namespace, a.Name))
		}
		slices.Sort(seen)
		t.Logf("the operator's authorization checks:\n%s", strings.Join(slices.Compact(seen), "\n"))
	}
}

// walkthrough applies config/samples as the README does, and waits for
// what the operator does in return.
func walkthrough(t *testing.T, cp *controlplane.ControlPlane, admin client.Client) {
	t.Helper()
	eventually(t, 30*time.Second, "the customer's samples are admitted", func() error {
		return createFiles(admin, "")
	})
	// The tenant manager is a partner user: denied until the index syncs.
	tm := as(t, cp, "tm@contoso.com", "contoso.com:tenant-managers")
	eventually(t, 30*time.Second, "the tenant manager accepts", func() error {
		return createFiles(tm, "accept")
	})
	// The customer squats the name of the link's initial assignment before
	// the link activates: the operator reads the object live, refuses to
	// take it for its own, and activates once the customer deleted it.
	squatter := &v1alpha1.RoomAssignment{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: link + "-invitation"},
		Spec:       v1alpha1.RoomAssignmentSpec{PartnerLink: link, Rooms: v1alpha1.RoomScope{Names: []string{"ber-board"}}},
	}
	if err := admin.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	releaseLeadership(t, admin)
	eventually(t, 30*time.Second, "the link is refused the squatted name", func() error {
		l := &v1alpha1.PartnerLink{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: link}, l); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonChildNameTaken {
			return fmt.Errorf("the link's Ready condition is %+v", c)
		}
		return nil
	})
	if err := admin.Delete(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the link activates", func() error {
		l := &v1alpha1.PartnerLink{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: link}, l); err != nil {
			return err
		}
		if l.Status.Phase != v1alpha1.LinkActive {
			return fmt.Errorf("the link is %q", l.Status.Phase)
		}
		return nil
	})
	alice := as(t, cp, "alice@contoso.com")
	eventually(t, 30*time.Second, "the primary admin delegates", func() error {
		return createFiles(alice, "delegate")
	})
	changeControl(t, cp, admin)
	createSamples(t, admin, "extend")
	eventually(t, 30*time.Second, "the Berlin room is in the partner's scope", func() error {
		room := &v1alpha1.Room{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "ber-board"}, room); err != nil {
			return err
		}
		if room.Labels[v1alpha1.AccessLabel(domain)] != "true" {
			return errors.New("the room has no access label")
		}
		return nil
	})
	// The customer may not delete the built-in role while its link exists:
	// the webhook reads the namespace to tell a namespace's deletion.
	err := admin.Delete(ctx, &v1alpha1.PartnerRole{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: link + "-primary-admins"}})
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		t.Fatalf("deleting the built-in role: %v, want a refusal", err)
	}
	// Nor the registration a link names.
	err = admin.Delete(ctx, &v1alpha1.PartnerOrganization{ObjectMeta: metav1.ObjectMeta{Name: domain}})
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
		t.Fatalf("deleting the registration of a partner with a link: %v, want a refusal", err)
	}
}

// holdLeadership writes the operator's leader election Lease as a replica
// that is gone but whose lease runs for an hour.
func holdLeadership(t *testing.T, admin client.Client) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	if err := admin.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: operator.LeaderElectionID},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: new("a-replica-that-is-gone"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &now, RenewTime: &now,
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// releaseLeadership deletes that Lease: the manager takes the lead.
func releaseLeadership(t *testing.T, admin client.Client) {
	t.Helper()
	if err := admin.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: operator.LeaderElectionID}}); err != nil {
		t.Fatal(err)
	}
}

// portalReview posts a review to /authorize as a portal backend: a token
// bound to partner-decision-client, which the operator reviews (TokenReview,
// SubjectAccessReview).
func portalReview(t *testing.T, cp *controlplane.ControlPlane, admin client.Client) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "portal"}}
	if err := admin.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "portal-decisions"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "partner-decision-client"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: tenant, Name: sa.Name}},
	}); err != nil {
		t.Fatal(err)
	}
	token := serviceAccountToken(t, cp, tenant, sa.Name)
	body, err := json.Marshal(authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice@" + domain, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: tenant, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: "nyc-conf-a",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cp.Webhook.CA)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cp.Webhook.URL(authzserver.Path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer := &authorizationv1.SubjectAccessReview{}
	if err := json.NewDecoder(resp.Body).Decode(answer); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the portal's review: %d, %v", resp.StatusCode, err)
	}
	if !answer.Status.Allowed {
		t.Fatalf("the portal's review of the primary admin's room: %+v, want allowed", answer.Status)
	}
}

// offboard deletes the link and waits until the operator let it go.
func offboard(t *testing.T, admin client.Client) {
	t.Helper()
	if err := admin.Delete(ctx, &v1alpha1.PartnerLink{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: link}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the link is offboarded", func() error {
		err := admin.Get(ctx, client.ObjectKey{Namespace: tenant, Name: link}, &v1alpha1.PartnerLink{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the link is still there (%v)", err)
	})
}

// createSamples creates the objects of config/samples/dir as c.
func createSamples(t *testing.T, c client.Client, dir string) {
	t.Helper()
	if err := createFiles(c, dir); err != nil {
		t.Fatal(err)
	}
}

func createFiles(c client.Client, dir string) error {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no samples in %s (%v)", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		objs, err := decode(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: %s %s: %w", f, o.GetKind(), o.GetName(), err)
			}
		}
	}
	return nil
}

// as is a client of the admin that impersonates user.
func as(t *testing.T, cp *controlplane.ControlPlane, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
