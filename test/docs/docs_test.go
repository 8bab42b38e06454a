// Package docs follows docs/authorization-webhook.md step by step against a
// real kube-apiserver: it runs the commands the document marks (fenced
// blocks after a `<!-- docs-test: NAME -->` comment) with the kubectl that
// hack/setup-envtest.sh builds and the kubectl-partner plugin of this
// module, against a cluster where the operator runs as deployed (its own
// certificate provisioning in partner-operator-system), then restarts the
// apiserver with the kubeconfig and AuthorizationConfiguration those
// commands wrote, and checks who reaches the webhook, with the operator up
// and down.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
	"github.com/roompro/partner-operator/internal/managercmd"
	"github.com/roompro/partner-operator/internal/testenv"
)

const (
	doc        = "docs/authorization-webhook.md"
	operatorNS = "partner-operator-system"
	tenant     = "fourth-coffee"
	// serviceName is the webhook Service as config/default names it, and
	// the name the kubeconfig's tls-server-name holds.
	serviceName = "partner-operator-webhook-service"
)

// marked are the blocks the document marks for this test, in its order.
var marked = []string{
	"break-glass", "client-certificate", "client-ca-configmap", "where", "files", "files-cert-manager",
	"kubeconfig", "authz-config", "kubeadm-config",
}

type block struct{ name, lang, body string }

var markerLine = regexp.MustCompile(`^(\s*)<!-- docs-test: ([a-z0-9-]+) -->$`)

// parseBlocks returns the marked fenced blocks of a Markdown document,
// without the indentation of a list item.
func parseBlocks(data []byte) ([]block, error) {
	var blocks []block
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		m := markerLine.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, name := m[1], m[2]
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], indent+"```") {
			return nil, fmt.Errorf("line %d: the marker %s is not followed by a fenced block", i+1, name)
		}
		b := block{name: name, lang: strings.TrimPrefix(lines[i+1], indent+"```")}
		var body []string
		closed := false
		for i += 2; i < len(lines); i++ {
			if lines[i] == indent+"```" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			return nil, fmt.Errorf("the block %s is not closed", name)
		}
		b.body = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// shell runs blocks as one bash script, as a person pasting them would,
// and returns its standard output.
type shell struct {
	t   *testing.T
	dir string
	env []string
}

func (s shell) run(script string) string {
	s.t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = s.dir, s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("running\n%s\nfailed: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (s shell) with(env ...string) shell {
	s.env = append(slices.Clone(s.env), env...)
	return s
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s: %v", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// operatorManifests are the Namespace and the webhook Service of
// config/default, as `make deploy` applies them.
func operatorManifests(t *testing.T) []client.Object {
	rendered, err := controlplane.Kustomize("config/default")
	must(t, err)
	var objs []client.Object
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rendered)))
	for {
		data, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil || u.Object == nil {
			continue
		}
		if u.GetKind() == "Namespace" || u.GetKind() == "Service" && u.GetName() == serviceName {
			objs = append(objs, u)
		}
	}
	if len(objs) != 2 {
		t.Fatalf("config/default renders %d of the Namespace and the Service %s", len(objs), serviceName)
	}
	return objs
}

func TestTheDocumentIsFollowedStepByStep(t *testing.T) {
	root, err := controlplane.RepositoryRoot()
	must(t, err)
	bin, err := controlplane.BinaryDir()
	must(t, err)
	data, err := os.ReadFile(filepath.Join(root, doc))
	must(t, err)
	parsed, err := parseBlocks(data)
	must(t, err)
	blocks := map[string]block{}
	var names []string
	for _, b := range parsed {
		blocks[b.name] = b
		names = append(names, b.name)
	}
	if !slices.Equal(names, marked) {
		t.Fatalf("%s marks the blocks %q, this test follows %q: change both together", doc, names, marked)
	}

	tmp := t.TempDir()
	plugins := filepath.Join(tmp, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "kubectl-partner"), "./cmd/kubectl-partner")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-partner: %v\n%s", err, out)
	}

	adminKubeconfig := filepath.Join(tmp, "admin.kubeconfig")
	cp, admin := testenv.StartControlPlane(t, controlplane.Options{KubeconfigPath: adminKubeconfig})
	ctx := context.Background()

	// The operator's Namespace and Service as deployed; a tenant, the
	// registered partners, and RBAC that would let every name below read
	// rooms, so that only the webhook can deny them.
	for _, obj := range operatorManifests(t) {
		must(t, admin.Create(ctx, obj))
	}
	must(t, admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}))
	must(t, testenv.RegisterPartners(ctx, admin, "contoso.com", "fabrikam.com"))
	readers := []string{"alice@contoso.com", "a@b@contoso.com", "Alice@Contoso.com.", "ops@eu.contoso.com", "bob@fourth-coffee.com", "x@y@northwind.example"}
	must(t, admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"rooms"}, Verbs: []string{"get", "list"}}}}))
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "room-reader"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "room-reader"}}
	for _, u := range readers {
		binding.Subjects = append(binding.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: "User", Name: u})
	}
	must(t, admin.Create(ctx, binding))
	// The customer's admin, who signs in through OIDC with a UPN.
	must(t, admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "fourth-coffee-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "admin@fourth-coffee.com"}}}))

	// The commands run in a working directory with config/ of a checkout,
	// as the document says, with bin/k8s's kubectl and the plugin on the PATH.
	work := filepath.Join(tmp, "work")
	must(t, os.MkdirAll(work, 0o700))
	must(t, os.Symlink(filepath.Join(root, "config"), filepath.Join(work, "config")))
	sh := shell{t: t, dir: work, env: []string{
		"PATH=" + plugins + ":" + bin + ":/usr/local/bin:/usr/bin:/bin",
		"KUBECONFIG=" + adminKubeconfig, "HOME=" + filepath.Join(tmp, "home"), "LANG=C",
	}}

	// "The apiserver's client certificate": the CA, the certificate, and
	// the ConfigMap the manager mounts.
	sh.run(blocks["client-certificate"].body)
	sh.run(blocks["client-ca-configmap"].body)
	clientCA := &corev1.ConfigMap{}
	must(t, admin.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: "partner-operator-webhook-client-ca"}, clientCA))
	caFile := filepath.Join(tmp, "webhook-client-ca", "ca.crt")
	must(t, os.MkdirAll(filepath.Dir(caFile), 0o700))
	must(t, os.WriteFile(caFile, []byte(clientCA.Data["ca.crt"]), 0o600))

	// The operator, as config/default runs it (the ConfigMap mounted as
	// its client CA file), on loopback.
	port := freePort(t)
	stopOperator := startOperator(t, cp, port, caFile, filepath.Join(tmp, "serving-certs"))

	// Step 2. The test's apiserver cannot reach a ClusterIP (no
	// kube-proxy): it checks what the command computes, then uses the
	// operator's loopback address, and a directory of its own for DIR.
	svc := &corev1.Service{}
	must(t, admin.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: serviceName}, svc))
	where := strings.Fields(sh.run(blocks["where"].body + `printf '%s %s\n' "$DIR" "$SERVER"` + "\n"))
	if want := []string{"/etc/kubernetes/partner-operator", "https://" + svc.Spec.ClusterIP + ":443/authorize"}; !slices.Equal(where, want) {
		t.Fatalf("step 2 sets DIR and SERVER to %q, want %q", where, want)
	}
	dir := filepath.Join(tmp, "etc", "partner-operator")
	server := "https://127.0.0.1:" + strconv.Itoa(port) + "/authorize"
	sh = sh.with("DIR="+dir, "SERVER="+server)

	// Step 3, both ways: the client certificate the openssl commands
	// issued, then from a Secret as cert-manager writes it.
	sh.run(blocks["files"].body)
	issuedCert, err := os.ReadFile(filepath.Join(work, "webhook-client.crt"))
	must(t, err)
	issuedKey, err := os.ReadFile(filepath.Join(work, "webhook-client.key"))
	must(t, err)
	must(t, admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: "partner-operator-webhook-client-cert"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": issuedCert, "tls.key": issuedKey, "ca.crt": []byte(clientCA.Data["ca.crt"])}}))
	must(t, os.Remove(filepath.Join(dir, "webhook-client.crt")))
	must(t, os.Remove(filepath.Join(dir, "webhook-client.key")))
	sh.run(blocks["files-cert-manager"].body)
	for name, want := range map[string][]byte{"webhook-client.crt": issuedCert, "webhook-client.key": issuedKey} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("step 3 with cert-manager wrote %s unlike the certificate in the Secret", name)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "webhook-client.key")); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("the client key is readable by others: %v, %v", info.Mode(), err)
	}
	servingSecret := &corev1.Secret{}
	must(t, admin.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: "partner-operator-webhook-server-cert"}, servingSecret))
	if ca, err := os.ReadFile(filepath.Join(dir, "webhook-serving-ca.crt")); err != nil || !bytes.Equal(ca, servingSecret.Data["ca.crt"]) || !bytes.HasPrefix(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("step 3 wrote a serving CA unlike the operator's (%v):\n%s", err, ca)
	}

	// Steps 4 and 5.
	sh.run(blocks["kubeconfig"].body)
	kubeconfig, err := clientcmd.LoadFromFile(filepath.Join(dir, "authorization-webhook.kubeconfig"))
	must(t, err)
	must(t, clientcmd.ResolveLocalPaths(kubeconfig)) // as the apiserver reads them: relative to the file
	cluster := kubeconfig.Clusters["partner-operator"]
	if cluster == nil || cluster.Server != server || cluster.TLSServerName != serviceName+"."+operatorNS+".svc" ||
		cluster.CertificateAuthority != filepath.Join(dir, "webhook-serving-ca.crt") || len(cluster.CertificateAuthorityData) > 0 {
		t.Fatalf("step 4 wrote the cluster %+v, want the server %s, tls-server-name %s.%s.svc and the CA file of step 3", cluster, server, serviceName, operatorNS)
	}
	sh.run(blocks["authz-config"].body)
	configPath := filepath.Join(dir, "authorization-config.yaml")
	config, err := os.ReadFile(configPath)
	must(t, err)
	if !bytes.Contains(config, []byte("# Partner domains: contoso.com, fabrikam.com\n")) {
		t.Fatalf("step 5 wrote a configuration for other partners:\n%s", config)
	}

	// Step 7.
	must(t, cp.RestartAPIServerWithAuthorizationConfig(configPath))
	admin, err = client.New(cp.Config, client.Options{Scheme: testenv.NewScheme()})
	must(t, err)
	review := func(user, verb string) authorizationv1.SubjectAccessReviewStatus {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: tenant, Verb: verb, Group: v1alpha1.GroupVersion.Group, Resource: "rooms"}}}
		must(t, admin.Create(ctx, sar))
		return sar.Status
	}
	// Denied: only the webhook denies (RBAC has no deny), and RBAC would allow.
	deniedByTheWebhook := func(user string) error {
		if st := review(user, "get"); !st.Denied || st.Allowed || strings.Contains(st.Reason, "stale") || strings.Contains(st.Reason, "synced") {
			return fmt.Errorf("%s: %+v, want the webhook's denial", user, st)
		}
		return nil
	}

	t.Run("a partner's request reaches the webhook through the docs' kubeconfig", func(t *testing.T) {
		eventually(t, time.Minute, "the webhook to answer alice@contoso.com", func() error { return deniedByTheWebhook("alice@contoso.com") })
		// Discovery, which no RBAC rule grants a user without groups, is the
		// webhook's allow.
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice@contoso.com",
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/api", Verb: "get"}}}
		must(t, admin.Create(ctx, sar))
		if !sar.Status.Allowed {
			t.Errorf("discovery for alice@contoso.com: %+v, want the webhook's allow", sar.Status)
		}
	})
	t.Run("names forged under a partner domain reach the webhook", func(t *testing.T) {
		for _, user := range []string{"a@b@contoso.com", "Alice@Contoso.com.", "ops@eu.contoso.com"} {
			if err := deniedByTheWebhook(user); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("the customer's staff get RBAC's answer", func(t *testing.T) {
		if st := review("bob@fourth-coffee.com", "get"); !st.Allowed {
			t.Errorf("bob@fourth-coffee.com get rooms: %+v, want RBAC's allow", st)
		}
		if st := review("bob@fourth-coffee.com", "delete"); st.Allowed || st.Denied {
			t.Errorf("bob@fourth-coffee.com delete rooms: %+v, want RBAC's no", st)
		}
	})
	t.Run("a partner registered later reaches the webhook once step 5 runs again", func(t *testing.T) {
		must(t, testenv.RegisterPartners(ctx, admin, "northwind.example"))
		if st := review("x@y@northwind.example", "get"); !st.Allowed {
			t.Fatalf("x@y@northwind.example before step 5 runs again: %+v, want RBAC's answer (the documented gap)", st)
		}
		sh.run(blocks["authz-config"].body)
		// The apiserver re-reads the file: at once on the file event, at
		// the latest at its one-minute poll.
		eventually(t, 90*time.Second, "the apiserver to load the new configuration", func() error { return deniedByTheWebhook("x@y@northwind.example") })
	})

	sh.run(blocks["break-glass"].body)
	stopOperator()

	t.Run("with the operator down, partners are denied and everyone else is not", func(t *testing.T) {
		if st := review("alice@contoso.com", "get"); st.Allowed {
			t.Errorf("alice@contoso.com with the operator down: %+v, want denied (failurePolicy: Deny)", st)
		}
		if st := review("bob@fourth-coffee.com", "get"); !st.Allowed {
			t.Errorf("bob@fourth-coffee.com with the operator down: %+v, want RBAC's allow", st)
		}
		// The customer's admin, signed in with a UPN of an unregistered
		// domain, can still repair the operator.
		customerAdmin := as(t, cp.Config, "admin@fourth-coffee.com")
		if err := customerAdmin.List(ctx, &v1alpha1.RoomList{}, client.InNamespace(tenant)); err != nil {
			t.Errorf("admin@fourth-coffee.com lists rooms with the operator down: %v", err)
		}
		if err := customerAdmin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: "repair"}}); err != nil {
			t.Errorf("admin@fourth-coffee.com writes in %s with the operator down: %v", operatorNS, err)
		}
		// The break-glass admin: a client certificate user without @.
		cfg, err := cp.AddUser("breakglass-admin")
		must(t, err)
		breakGlass, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
		must(t, err)
		if err := breakGlass.List(ctx, &corev1.SecretList{}, client.InNamespace(operatorNS)); err != nil {
			t.Errorf("the break-glass admin with the operator down: %v", err)
		}
	})

	t.Run("the local configuration, copied to a cluster, would deny the customer's admin", func(t *testing.T) {
		// What the document used to say to install: every name with an @
		// goes to the webhook. The apiserver re-reads the file.
		shipped, err := os.ReadFile(filepath.Join(root, "config", "authorization", "authorization-config.yaml"))
		must(t, err)
		local := strings.Replace(string(shipped), "/etc/kubernetes/partner-operator/authorization-webhook.kubeconfig", filepath.Join(dir, "authorization-webhook.kubeconfig"), 1)
		must(t, os.WriteFile(configPath+".new", []byte(local), 0o600))
		must(t, os.Rename(configPath+".new", configPath))
		eventually(t, 90*time.Second, "the apiserver to load the local configuration", func() error {
			if st := review("admin@fourth-coffee.com", "get"); st.Allowed || !st.Denied {
				return fmt.Errorf("admin@fourth-coffee.com: %+v, want denied by the unreachable webhook", st)
			}
			return nil
		})
	})
}

// TestKubeadmConfiguration checks the document's kubeadm ClusterConfiguration
// against the files its commands write: the flags name them in DIR, the
// volume mounts DIR read-only, and nothing sets --authorization-mode.
func TestKubeadmConfiguration(t *testing.T) {
	root, err := controlplane.RepositoryRoot()
	must(t, err)
	data, err := os.ReadFile(filepath.Join(root, doc))
	must(t, err)
	blocks, err := parseBlocks(data)
	must(t, err)
	var where, kubeadm string
	for _, b := range blocks {
		switch b.name {
		case "where":
			where = b.body
		case "kubeadm-config":
			kubeadm = b.body
		}
	}
	dir := regexp.MustCompile(`(?m)^DIR=(\S+)$`).FindStringSubmatch(where)
	if dir == nil {
		t.Fatalf("step 2 sets no DIR:\n%s", where)
	}
	var config struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		APIServer  struct {
			ExtraArgs    []struct{ Name, Value string } `json:"extraArgs"`
			ExtraVolumes []struct {
				Name      string `json:"name"`
				HostPath  string `json:"hostPath"`
				MountPath string `json:"mountPath"`
				ReadOnly  bool   `json:"readOnly"`
				PathType  string `json:"pathType"`
			} `json:"extraVolumes"`
		} `json:"apiServer"`
	}
	must(t, yaml.UnmarshalStrict([]byte(kubeadm), &config))
	if config.APIVersion != "kubeadm.k8s.io/v1beta4" || config.Kind != "ClusterConfiguration" {
		t.Errorf("the kubeadm block is a %s %s, want a kubeadm.k8s.io/v1beta4 ClusterConfiguration", config.APIVersion, config.Kind)
	}
	args := map[string]string{}
	for _, a := range config.APIServer.ExtraArgs {
		args[a.Name] = a.Value
	}
	want := map[string]string{
		"authorization-config":          dir[1] + "/authorization-config.yaml",
		"admission-control-config-file": dir[1] + "/admission-config.yaml",
	}
	if fmt.Sprint(args) != fmt.Sprint(want) {
		t.Errorf("extraArgs %v, want %v (and no authorization-mode)", args, want)
	}
	if v := config.APIServer.ExtraVolumes; len(v) != 1 || v[0].HostPath != dir[1] || v[0].MountPath != dir[1] || !v[0].ReadOnly || v[0].PathType != "Directory" {
		t.Errorf("extraVolumes %+v, want %s mounted read-only as a Directory", v, dir[1])
	}
}

func as(t *testing.T, cfg *rest.Config, user string) client.Client {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	cl, err := client.New(c, client.Options{Scheme: testenv.NewScheme()})
	must(t, err)
	return cl
}

// startOperator runs the manager as config/default deploys it: self-signed
// serving certificates for the webhook Service in partner-operator-system
// (the Secret partner-operator-webhook-server-cert), the apiserver's client
// CA, on loopback. This apiserver has no admission webhooks (the test is
// about authorization), so no caBundle is kept. It returns a function that
// stops the manager and waits for it.
func startOperator(t *testing.T, cp *controlplane.ControlPlane, port int, caFile, certDir string) (stop func()) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true)))
	var opts managercmd.Options
	fs := flagSet()
	opts.BindFlags(fs)
	must(t, fs.Parse([]string{
		"--cert-provisioning=self-signed", "--namespace=" + operatorNS,
		"--webhook-port=" + strconv.Itoa(port), "--webhook-cert-dir=" + certDir,
		"--webhook-client-ca-file=" + caFile,
		"--health-probe-bind-address=0", "--metrics-bind-address=0",
		"--mutating-webhook-configuration=", "--validating-webhook-configuration=",
	}))
	opts.WebhookHost = "127.0.0.1"
	cfg, err := cp.AddUser("partner-operator", "system:masters")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- managercmd.Run(ctx, cfg, opts) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the operator exited: %v\n%s", err, logs.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("operator log:\n%s", logs.String())
		}
	})
	// The webhook server listens once the manager has started.
	eventually(t, time.Minute, "the operator's webhook server to listen", func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("the operator exited: %w\n%s", err, logs.String())
		default:
		}
		// A handshake without a client certificate completes (the server
		// asks for one but does not require it), and logs nothing.
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only: is it listening
		if err != nil {
			return err
		}
		return c.Close()
	})
	return stop
}

func flagSet() *flag.FlagSet { return flag.NewFlagSet("manager", flag.ContinueOnError) }
