// Package scale measures the operator at the size of a large customer,
// against a real kube-apiserver and etcd: 100,000 rooms, 1,000 partner links
// (each with the assignment and the primary-admin role the operator creates)
// and 4,000 more roles, in one namespace and spread over 100. The operator
// runs as its own process, built from ./cmd/manager, so that its peak RSS is its own.
//
// It runs only as a benchmark (`make bench`), never in `make test`:
//
//	go test ./test/scale -run '^$' -bench . -benchtime=1x -timeout 180m -v
//
// SCALE_ROOMS and SCALE_LINKS shrink the world for a quick try;
// SCALE_NAMESPACES runs one layout only.
package scale

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1 "k8s.io/api/core/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/operator"
	"github.com/roompro/partner-operator/internal/testenv"
)

var scheme = testenv.NewScheme()

// TestMain keeps `go test ./...` from building worlds: only -bench runs here.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testenv.BenchmarksRequested() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkConvergence reports, per layout, the seconds from the first create
// to every link Ready and every room labelled, and the operator's peak RSS.
// Targets: convergence ≤ 120 s, RSS ≤ 512 MiB.
func BenchmarkConvergence(b *testing.B) {
	rooms, links := envInt("SCALE_ROOMS", 100_000), envInt("SCALE_LINKS", 1_000)
	layouts := []int{1, 100}
	if n := envInt("SCALE_NAMESPACES", 0); n > 0 {
		layouts = []int{n}
	}
	for _, namespaces := range layouts {
		b.Run(fmt.Sprintf("rooms=%d/links=%d/namespaces=%d", rooms, links, namespaces), func(b *testing.B) {
			w := world{rooms: rooms, links: links, namespaces: namespaces, extraRolesPerLink: 4}
			converged, rss := w.run(b)
			b.ReportMetric(converged.Seconds(), "converge-s")
			b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		})
	}
}

// world lays out links evenly over namespaces and rooms evenly over links:
// room i of a namespace carries partner=p<i mod links-per-namespace>, the
// label its link's invitation selects.
type world struct {
	rooms, links, namespaces, extraRolesPerLink int
}

func (w world) namespace(n int) string { return fmt.Sprintf("customer-%03d", n) }
func domainOf(link int) string         { return fmt.Sprintf("p%d.example.com", link) }

func (w world) run(b *testing.B) (converged time.Duration, peakRSS int64) {
	ctx := context.Background()
	cp, err := controlplane.Start(controlplane.Options{Webhooks: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	adminConfig := rest.CopyConfig(cp.Config)
	adminConfig.QPS = -1 // the loader is not what is measured: no client-side limit
	admin, err := client.New(adminConfig, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	// The platform team registers every partner (and the probe's domain):
	// admission refuses invitations of unregistered domains. A
	// registration has no admission webhook, so this needs no operator.
	if err := testenv.RegisterPartners(ctx, admin, "probe.example.com"); err != nil {
		b.Fatal(err)
	}
	parallel(b, w.links/w.namespaces, func(j int) error { return testenv.RegisterPartners(ctx, admin, domainOf(j)) })
	proc := startOperator(b, cp)
	defer proc.stop()
	waitForWebhooks(b, admin)
	progressf("operator ready")
	impersonators := map[string]client.Client{}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	rooms := trackRooms(watchCtx, b, adminConfig)

	linksPerNs := w.links / w.namespaces
	roomsPerNs := w.rooms / w.namespaces
	start := time.Now()
	for n := range w.namespaces {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.namespace(n)}}); err != nil {
			b.Fatal(err)
		}
	}
	// Invitations first, so the links created below can be accepted.
	parallel(b, w.links, func(i int) error {
		ns, j := w.namespace(i/linksPerNs), i%linksPerNs
		return admin.Create(ctx, &v1alpha1.PartnerInvitation{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", j)},
			Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: v1alpha1.Domain(domainOf(j)), ExpiryDays: 30, TermsAccepted: true,
				Rooms: v1alpha1.RoomScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"partner": fmt.Sprintf("p%d", j)}}}},
		})
	})
	parallel(b, w.links, func(i int) error {
		ns, j := w.namespace(i/linksPerNs), i%linksPerNs
		tm := impersonate(b, cp, impersonators, "tm@"+domainOf(j), domainOf(j)+":tenant-managers")
		return tm.Create(ctx, &v1alpha1.PartnerLink{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", j)},
			Spec: v1alpha1.PartnerLinkSpec{Invitation: fmt.Sprintf("p%d", j), PartnerDomain: v1alpha1.Domain(domainOf(j)),
				PrimaryAdmins: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "admin@" + domainOf(j)}}},
		})
	})
	progressf("created %d invitations and links", w.links)
	parallel(b, w.links*w.extraRolesPerLink, func(i int) error {
		link := i / w.extraRolesPerLink
		ns, j := w.namespace(link/linksPerNs), link%linksPerNs
		return admin.Create(ctx, &v1alpha1.PartnerRole{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d-techs-%d", j, i%w.extraRolesPerLink)},
			Spec: v1alpha1.PartnerRoleSpec{PartnerLink: fmt.Sprintf("p%d", j), Permissions: []v1alpha1.Permission{v1alpha1.RoomsView, v1alpha1.TicketsCreate},
				Assignments: []v1alpha1.RoleAssignment{{Name: "techs", Members: []v1alpha1.Subject{
					{Kind: v1alpha1.GroupSubject, Name: fmt.Sprintf("%s:techs-%d", domainOf(j), i%w.extraRolesPerLink)}}}}},
		})
	})
	parallel(b, w.rooms, func(i int) error {
		ns, r := w.namespace(i/roomsPerNs), i%roomsPerNs
		return admin.Create(ctx, &v1alpha1.Room{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("room-%d", r),
				Labels: map[string]string{"partner": fmt.Sprintf("p%d", r%linksPerNs), "floor": strconv.Itoa(r / linksPerNs % 10)}},
			Spec: v1alpha1.RoomSpec{DisplayName: fmt.Sprintf("Room %d", r)},
		})
	})
	progressf("created %d rooms", w.rooms)
	created := time.Since(start)
	b.Logf("created %d namespaces, %d invitations and links, %d roles, %d rooms in %s", w.namespaces, w.links, w.links*w.extraRolesPerLink, w.rooms, created.Round(time.Millisecond))

	deadline := time.Now().Add(60 * time.Minute)
	for {
		linksReady, roomsLabelled := w.progress(b, admin, rooms)
		progressf("%s: %d/%d links Ready, %d/%d rooms labelled", time.Since(start).Round(time.Second), linksReady, w.links, roomsLabelled, w.rooms)
		if linksReady == w.links && roomsLabelled == w.rooms {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not converged after %s: %d/%d links Ready, %d/%d rooms labelled", time.Since(start), linksReady, w.links, roomsLabelled, w.rooms)
		}
		time.Sleep(2 * time.Second)
	}
	converged = time.Since(start)
	peakRSS = proc.peakRSS(b)
	proc.heapProfile(b)
	b.Logf("converged in %s (created in %s); operator peak RSS %d MiB", converged.Round(time.Millisecond), created.Round(time.Millisecond), peakRSS>>20)
	return converged, peakRSS
}

// progress counts the Ready links (a list: there are few) and the rooms
// that carry the access label of the partner whose link selects them (from
// a metadata watch: listing 100k rooms every second would load the apiserver
// more than the operator does).
func (w world) progress(b *testing.B, c client.Client, rooms *roomTracker) (linksReady, roomsLabelled int) {
	links := &v1alpha1.PartnerLinkList{}
	if err := c.List(context.Background(), links); err != nil {
		b.Fatal(err)
	}
	for i := range links.Items {
		if meta.IsStatusConditionTrue(links.Items[i].Status.Conditions, v1alpha1.ConditionReady) {
			linksReady++
		}
	}
	return linksReady, rooms.labelled()
}

// roomTracker follows the rooms' labels through a metadata-only watch.
type roomTracker struct {
	mu    sync.Mutex
	rooms map[string]bool // namespace/name -> labelled for its partner
}

func trackRooms(ctx context.Context, b *testing.B, cfg *rest.Config) *roomTracker {
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	t := &roomTracker{rooms: map[string]bool{}}
	informer := metadatainformer.NewFilteredMetadataInformer(mc, v1alpha1.GroupVersion.WithResource("rooms"), metav1.NamespaceAll, 0, toolscache.Indexers{}, nil).Informer()
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    t.set,
		UpdateFunc: func(_, obj any) { t.set(obj) },
	}); err != nil {
		b.Fatal(err)
	}
	go informer.Run(ctx.Done())
	return t
}

func (t *roomTracker) set(obj any) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	labelled := m.Labels[v1alpha1.AccessLabel(domainOf(partnerOf(m.Labels["partner"])))] == "true"
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rooms[m.Namespace+"/"+m.Name] = labelled
}

func (t *roomTracker) labelled() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, labelled := range t.rooms {
		if labelled {
			n++
		}
	}
	return n
}

func partnerOf(label string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(label, "p"))
	return n
}

// progressf prints a progress line at once (the benchmark's own log is
// printed only when it ends).
func progressf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// parallel runs create(0..n-1) on 32 workers and fails on the first error.
func parallel(b *testing.B, n int, create func(int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := create(i); err != nil {
					errs <- fmt.Errorf("object %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

var impersonatorsMu sync.Mutex

// impersonate returns a client acting as user, one per user and control plane.
func impersonate(b *testing.B, cp *controlplane.ControlPlane, impersonators map[string]client.Client, user string, groups ...string) client.Client {
	impersonatorsMu.Lock()
	defer impersonatorsMu.Unlock()
	if c, ok := impersonators[user]; ok {
		return c
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS = -1
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	impersonators[user] = c
	return c
}

// operatorProcess is the manager binary, running as its own user against the
// control plane and serving the webhooks where the apiserver calls them.
type operatorProcess struct {
	cmd   *exec.Cmd
	pprof string // address of its /debug/pprof/
	dir   string
}

func startOperator(b *testing.B, cp *controlplane.ControlPlane) *operatorProcess {
	dir := b.TempDir()
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		b.Fatal(err)
	}
	binary := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", binary, "./cmd/manager")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("building the manager: %v", err)
	}
	cfg, err := cp.AddUser("partner-operator", "system:masters")
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cfg); err != nil {
		b.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "operator.log"))
	if err != nil {
		b.Fatal(err)
	}
	pprof, err := freeAddress()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(binary, "--webhook-port", strconv.Itoa(cp.Webhook.Port), "--webhook-cert-dir", cp.Webhook.CertDir,
		"--webhook-client-ca-file", cp.Webhook.ClientCAFile,
		"--health-probe-bind-address", "0", "--metrics-bind-address", "0", "--pprof-bind-address", pprof, "--zap-log-level", "error")
	// As config/manager runs it: told the container's memory limit, it sets
	// its own GOMEMLIMIT (operator.SoftMemoryLimit).
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, operator.ContainerMemoryLimitEnv+"="+memoryLimit)
	cmd.Stdout, cmd.Stderr = log, log // the audit lines and errors, kept out of the figures' way
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &operatorProcess{cmd: cmd, pprof: pprof, dir: dir}
}

// memoryLimit is the manager container's limit in config/manager, 512Mi,
// in bytes as its resourceFieldRef gives it.
const memoryLimit = "536870912"

func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// heapProfile saves the operator's heap profile and logs its top entries.
func (p *operatorProcess) heapProfile(b *testing.B) {
	resp, err := http.Get("http://" + p.pprof + "/debug/pprof/heap")
	if err != nil {
		b.Logf("no heap profile: %v", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	path := filepath.Join(p.dir, "heap.pprof")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
	top, _ := exec.Command("go", "tool", "pprof", "-top", "-nodecount", "12", "-sample_index", "inuse_space", path).CombinedOutput()
	b.Logf("operator heap in use (%s):\n%s", path, top)
}

// waitForWebhooks waits until the operator answers the admission webhooks:
// a dry-run create of an invitation passes through them.
func waitForWebhooks(b *testing.B, admin client.Client) {
	probe := &v1alpha1.PartnerInvitation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "probe"},
		Spec: v1alpha1.PartnerInvitationSpec{PartnerDomain: "probe.example.com", ExpiryDays: 1, TermsAccepted: true,
			Rooms: v1alpha1.RoomScope{Names: []string{"probe"}}},
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := admin.Create(context.Background(), probe.DeepCopy(), client.DryRunAll)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the operator's webhooks did not answer: %v", err)
		}
		progressf("waiting for the operator: %v", err)
		time.Sleep(time.Second)
	}
}

func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait()
}

// peakRSS reads VmHWM, the high-water mark of the process's resident set.
func (p *operatorProcess) peakRSS(b *testing.B) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
