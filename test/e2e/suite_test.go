// Package e2e runs the whole operator — controllers, admission webhooks and
// the authorization webhook — against a real kube-apiserver configured to ask
// it, and proves what partner users can and cannot do through impersonated
// requests.
package e2e

import (
	"context"
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
	ctx       = context.Background()
	cp        *controlplane.ControlPlane
	admin     client.Client
	fakeClock *clocktesting.FakeClock
	scheme    = testenv.NewScheme()
	stop      context.CancelFunc
	done      = make(chan struct{})
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))

	var err error
	cp, err = controlplane.Start(controlplane.Options{Webhooks: true})
	Expect(err).NotTo(HaveOccurred())
	admin, err = client.New(cp.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The manager runs as its own user, as in a cluster: the admin plays
	// the customer's staff, whose writes the webhooks judge as such.
	managerConfig, err := cp.AddUser("partner-operator", "system:masters")
	Expect(err).NotTo(HaveOccurred())
	fakeClock = clocktesting.NewFakeClock(time.Now())
	mgr, err := operator.New(ctx, managerConfig, operator.Options{
		Clock: fakeClock, AuditLog: GinkgoWriter,
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
	})
	Expect(err).NotTo(HaveOccurred())

	var mgrCtx context.Context
	mgrCtx, stop = context.WithCancel(ctx)
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()

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
	if stop != nil {
		stop()
		<-done
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// as returns a client that impersonates a user.
func as(user string, groups ...string) client.Client {
	GinkgoHelper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
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
