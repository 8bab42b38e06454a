// Package e2e runs the whole operator — controllers, admission webhooks and
// the authorization webhook — against a real kube-apiserver configured to ask
// it, and proves what partner users can and cannot do through impersonated
// requests.
package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

func TestEndToEnd(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End to end (envtest with authorization and admission webhooks)")
}

// partnerDomains are the registered partners of the suite.
var partnerDomains = []string{domain, "fabrikam.com", "ready.example.com"}

var (
	ctx           = context.Background()
	cp            *controlplane.ControlPlane
	admin         client.Client
	managerConfig *rest.Config
	fakeClock     *clocktesting.FakeClock
	scheme        = testenv.NewScheme()
	running       *runningOperator
	// managerLog holds everything the managers logged, and auditLog their
	// audit lines, for the specs that look for errors or records in them.
	managerLog, auditLog = &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, managerLog)), zap.UseDevMode(true)))

	var err error
	// With kube-controller-manager: a deleted namespace is emptied and goes,
	// and owner references are honoured, as on a real cluster.
	started := time.Now()
	cp, err = controlplane.Start(controlplane.Options{Webhooks: true, ControllerManager: true})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("the control plane started in %s\n", time.Since(started).Round(time.Millisecond))
	admin, err = client.New(cp.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The manager runs as its own user, as in a cluster: the admin plays
	// the customer's staff, whose writes the webhooks judge as such.
	managerConfig, err = cp.AddUser("partner-operator", "system:masters")
	Expect(err).NotTo(HaveOccurred())
	fakeClock = clocktesting.NewFakeClock(time.Now())
	running = startOperator(nil)

	// The platform team registers the partners the specs invite (the
	// admission webhooks refuse any other) before anything else runs, since
	// ginkgo shuffles the containers. ready.example.com is the probe's.
	Expect(testenv.RegisterPartners(ctx, admin, partnerDomains...)).To(Succeed())

	// Ready when the apiserver gets the webhook's own answer for a partner
	// user: a Deny saying the domain has no partnership, not "not synced"
	// and not a connection failure.
	Eventually(func() string {
		return review(&authorizationv1.ResourceAttributes{Namespace: "nowhere", Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: "x"}, "probe@ready.example.com").Status.Reason
	}).Should(ContainSubstring("no role of the caller grants"))
})

var _ = AfterSuite(func() {
	if running != nil {
		running.stop()
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// runningOperator is a manager started by startOperator.
type runningOperator struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startOperator starts the whole operator on the control plane's webhook
// address, as the suite runs it; with le, it reconciles only once elected.
func startOperator(le *operator.LeaderElection) *runningOperator {
	GinkgoHelper()
	mgr, err := operator.New(ctx, managerConfig, operator.Options{
		Clock: fakeClock, AuditLog: io.MultiWriter(GinkgoWriter, auditLog),
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
		LeaderElection: le,
		// The lifecycle specs stop the manager and start another.
		SkipControllerNameValidation: true,
	})
	Expect(err).NotTo(HaveOccurred())
	mgrCtx, cancel := context.WithCancel(ctx)
	r := &runningOperator{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(r.done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	return r
}

// stop stops the manager and waits until it has.
func (r *runningOperator) stop() {
	r.cancel()
	<-r.done
}

// as returns a client that impersonates a user.
func as(user string, groups ...string) client.Client {
	GinkgoHelper()
	return asSession(user, nil, groups...)
}

// asSession returns a client that impersonates a user whose session
// carries extra, as kubectl --as-user-extra does: the apiserver passes it
// to the authorization webhook in the SubjectAccessReview's spec.extra, as
// it would an OIDC claim an AuthenticationConfiguration maps there.
func asSession(user string, extra map[string][]string, groups ...string) client.Client {
	GinkgoHelper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups, Extra: extra}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// review asks the apiserver's authorizer chain about a user, as a portal
// backend would.
func review(attrs *authorizationv1.ResourceAttributes, user string, groups ...string) *authorizationv1.SubjectAccessReview {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups, ResourceAttributes: attrs,
	}}
	Expect(admin.Create(ctx, sar)).To(Succeed())
	return sar
}
