// Package adversarial attacks the whole operator — controllers, admission
// webhooks and the authorization webhook — behind a real kube-apiserver, by
// classes of attack rather than by single cases: every case is generated from
// small tables (users × requests × names × namespaces, metadata fields ×
// write methods, username transforms, selector atoms, writers × links ×
// operations) and is its own named subtest, so a failure names the attack
// that got through.
//
// Expected verdicts come from one reference function (reference_test.go),
// written from DESIGN.md's permission matrix and request → permission table,
// not from the implementation.
//
// The classes run in one order inside TestAdversarial: the read-only ones
// first (discovery, the request matrix, usernames, selectors), then change
// requests (reads, and writes that must all be refused), then the writes
// (metadata, cross-link), which restore what a hole let through so
// that a later case sees the world buildWorld made.
package adversarial

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

var (
	ctx    = context.Background()
	cp     *controlplane.ControlPlane
	admin  client.Client // the customer (envtest's admin)
	opUser client.Client // the operator's own user: restores what a hole changed, past admission
	scheme = testenv.NewScheme()
	// fakeClock is the operator's: the time class steps it.
	fakeClock = clocktesting.NewFakeClock(time.Now())
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stop, err := start()
	if stop != nil {
		defer stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adversarial: starting the operator:", err)
		return 1
	}
	if err := buildWorld(); err != nil {
		fmt.Fprintln(os.Stderr, "adversarial: building the world:", err)
		return 1
	}
	return m.Run()
}

// start runs a control plane wired to the webhooks and the operator on it,
// as test/e2e does: the manager as its own user, a fake clock.
func start() (stop func(), err error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	cp, err = controlplane.Start(controlplane.Options{Webhooks: true})
	if err != nil {
		return nil, err
	}
	var mgrDone chan struct{}
	var cancel context.CancelFunc
	stop = func() {
		if cancel != nil {
			cancel()
			<-mgrDone
		}
		_ = cp.Stop()
	}
	if admin, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		return stop, err
	}
	managerConfig, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		return stop, err
	}
	mgr, err := operator.New(ctx, managerConfig, operator.Options{
		Clock: fakeClock, AuditLog: io.Discard,
		Webhook:        webhook.Options{Host: cp.Webhook.Host, Port: cp.Webhook.Port, CertDir: cp.Webhook.CertDir},
		WebhookCallers: cp.Webhook.Callers(),
	})
	if err != nil {
		return stop, err
	}
	if opUser, err = client.New(managerConfig, client.Options{Scheme: scheme, Mapper: admin.RESTMapper()}); err != nil {
		return stop, err
	}
	mgrCtx, cancelMgr := context.WithCancel(ctx)
	cancel = cancelMgr
	mgrDone = make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "adversarial: manager:", err)
		}
	}()
	return stop, nil
}

// TestAdversarial runs the classes in a fixed order: reads first, writes last.
func TestAdversarial(t *testing.T) {
	t.Run("discovery", testDiscovery)
	t.Run("matrix", testMatrix)
	t.Run("usernames", testUsernames)
	t.Run("selectors", testSelectors)
	t.Run("changerequests", testChangeRequests)
	t.Run("metadata", testMetadata)
	t.Run("crosslink", testCrossLink)
	t.Run("time", testTime)
}

var (
	clientsMu sync.Mutex
	clients   = map[string]client.Client{}
)

// as returns a client impersonating user (the apiserver adds
// system:authenticated). It shares the admin's REST mapper, so that its
// requests are only the ones a case makes, not discovery.
func as(user string, groups ...string) client.Client {
	key := fmt.Sprint(user, groups)
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[key]; ok {
		return c
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: admin.RESTMapper()})
	if err != nil {
		panic(err)
	}
	clients[key] = c
	return c
}

// review posts one SubjectAccessReview through the apiserver, as a portal
// backend would: the admin creates it about spec.user.
func review(spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: spec}
	if err := admin.Create(ctx, sar); err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	return sar.Status, nil
}

// reviewAll posts many reviews with a few workers (the apiserver and the
// webhook are concurrent; one at a time would take minutes on 2 cores) and
// returns the answers in order.
func reviewAll(specs []authorizationv1.SubjectAccessReviewSpec) ([]authorizationv1.SubjectAccessReviewStatus, []error) {
	out := make([]authorizationv1.SubjectAccessReviewStatus, len(specs))
	errs := make([]error, len(specs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = review(specs[i])
			}
		})
	}
	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errs
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
