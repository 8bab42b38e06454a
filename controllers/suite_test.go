package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers (envtest)")
}

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	fakeClock *clocktesting.FakeClock
	auditLog  = &testenv.SyncBuffer{}
	scheme    = testenv.NewScheme()
	stop      context.CancelFunc
	done      = make(chan struct{})
)

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))

	var err error
	cp, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The controllers judge time by a fake clock: specs move it instead of
	// sleeping for days. It starts at the real time, so the apiserver's
	// creationTimestamps and the clock agree.
	fakeClock = clocktesting.NewFakeClock(time.Now())
	startManager()
})

// Every spec starts with the fake clock at the real time. The specs share one
// manager and so one clock, Ginkgo runs the top-level containers in a random
// order, and a spec that moved the clock 40 days ahead would otherwise expire
// the next spec's invitations the moment they are created.
var _ = BeforeEach(func() { fakeClock.SetTime(time.Now()) })

// startManager starts the operator's controllers on the suite's control
// plane, judging time by fakeClock. A spec that restarts the operator stops
// the running one first (restartManager); the specs of this suite run one
// at a time.
func startManager() {
	GinkgoHelper()
	// The control plane asks no webhooks: the controllers run alone. A
	// restart registers the same controllers again in this process.
	mgr, err := operator.New(context.Background(), cp.Config, operator.Options{
		Clock: fakeClock, AuditLog: auditLog, ControllersOnly: true, ChangeRecheck: fakeRecheck,
		SkipControllerNameValidation: true,
	})
	Expect(err).NotTo(HaveOccurred())

	var ctx context.Context
	ctx, stop = context.WithCancel(context.Background())
	exited := make(chan struct{})
	done = exited
	go func() {
		defer GinkgoRecover()
		defer close(exited)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

// restartManager stops the running operator, as a crash or a rollout
// does, and starts a new one: nothing it held in memory (deadlines, caches)
// survives, only what is stored in the apiserver.
func restartManager() {
	GinkgoHelper()
	stop()
	<-done
	startManager()
}

var _ = AfterSuite(func() {
	if stop != nil {
		stop()
		<-done
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// newNamespace creates a namespace (a customer tenant) for one spec.
func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-"}}
	Expect(k8sClient.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}
