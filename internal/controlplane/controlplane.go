// Package controlplane runs a local etcd and kube-apiserver on loopback, with
// this operator's CRDs installed, and, when asked, a kube-controller-manager
// with the namespace and garbage-collector controllers. `make run`
// (cmd/local, which runs the manager on it) and the envtest suites share it,
// so that what a developer tries by hand and what the tests prove run on the
// same setup.
//
// It wraps controller-runtime's envtest, which picks random free ports, keeps
// every byte of state in a temporary directory and removes it on Stop. The
// binaries come from hack/setup-envtest.sh, which builds them from the Go
// module proxy; nothing is downloaded.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/roompro/partner-operator/internal/authzserver"
)

// KubernetesVersion is the version hack/setup-envtest.sh builds; the binaries
// live in bin/k8s/<KubernetesVersion>/ of the repository.
const KubernetesVersion = "v1.37.2"

// Options configure a local control plane. The zero value finds everything
// relative to the repository that holds the working directory.
type Options struct {
	// BinaryDir holds etcd and kube-apiserver. Default: $KUBEBUILDER_ASSETS,
	// else bin/k8s/<KubernetesVersion> of the repository.
	BinaryDir string

	// CRDDir holds the CRD manifests to install. Default: config/crd/bases of
	// the repository.
	CRDDir string

	// KubeconfigPath, when set, is where an admin kubeconfig is written. The
	// file is removed again by Stop.
	KubeconfigPath string

	// Output receives the output of etcd and kube-apiserver; nil discards it.
	Output io.Writer

	// Webhooks wires the apiserver to a webhook server on loopback that the
	// caller runs (the manager): the authorization webhook, configured from
	// AuthorizationConfig, and the admission webhooks of WebhookManifests,
	// called with a client certificate as AdmissionConfig says. Start
	// issues the serving certificate and the apiserver's client
	// certificate; ControlPlane.Webhook says where to listen and which
	// client CA to accept (WebhookServing.Callers).
	Webhooks bool
	// AuthorizationConfig is the AuthorizationConfiguration to give the
	// apiserver. Default: config/authorization/authorization-config.yaml.
	AuthorizationConfig string
	// AdmissionConfig is the AdmissionConfiguration to give the apiserver.
	// Default: config/authorization/admission-config.yaml.
	AdmissionConfig string
	// WebhookManifests holds the admission webhook configurations. Default:
	// config/webhook/manifests.yaml.
	WebhookManifests string

	// AdmissionWebhooksOff starts the kube-apiserver without its
	// MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins:
	// webhook configurations are stored but never called. For a suite that
	// installs manifests whose webhooks no process serves: test/helm
	// installs the chart, whose webhook Service has no pod on a control
	// plane without nodes. Not with Webhooks.
	AdmissionWebhooksOff bool

	// ControllerManager also runs kube-controller-manager (from BinaryDir)
	// with the controllers that make the control plane behave like a
	// cluster towards this operator: the namespace controller (a deleted
	// namespace is emptied and goes), the garbage collector (owner
	// references are honoured) and the serviceaccount controller (every
	// namespace gets its default ServiceAccount). Start returns once they
	// run. Off by default: it costs a second or two of start-up and some CPU,
	// which suites that never delete a namespace or rely on owner
	// references need not pay.
	ControllerManager bool

	// AdmissionPlugins are admission plugins to enable besides the
	// apiserver's defaults (--enable-admission-plugins), for example
	// OwnerReferencesPermissionEnforcement, which some distributions enable.
	AdmissionPlugins []string
}

// ControlPlane is a running etcd and kube-apiserver (and
// kube-controller-manager, with Options.ControllerManager).
type ControlPlane struct {
	env            *envtest.Environment
	kubeconfigPath string
	tempDir        string
	// startAttempted: env.Start ran, so env.Stop has processes to stop.
	startAttempted bool
	// controllerManager runs with Options.ControllerManager.
	controllerManager *controllerManager

	// Webhook is where the webhook server must listen, with Options.Webhooks.
	Webhook *WebhookServing

	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is Config as a kubeconfig file.
	Kubeconfig []byte
}

// Start starts etcd and kube-apiserver, installs the CRDs and waits until
// they are served.
func Start(opts Options) (*ControlPlane, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: opts.BinaryDir,
		CRDDirectoryPaths:     []string{opts.CRDDir},
		ErrorIfCRDPathMissing: true,
	}
	if opts.Output != nil {
		env.AttachControlPlaneOutput = true
		env.ControlPlane.GetAPIServer().Out, env.ControlPlane.GetAPIServer().Err = opts.Output, opts.Output
		env.ControlPlane.Etcd = &envtest.Etcd{Out: opts.Output, Err: opts.Output}
	}
	cp := &ControlPlane{env: env}
	if err := cp.keepAPIServerCertificates(); err != nil {
		return nil, err
	}
	if opts.Webhooks {
		if err := cp.prepareWebhooks(opts); err != nil {
			return nil, errors.Join(err, cp.Stop())
		}
	}
	if len(opts.AdmissionPlugins) > 0 {
		env.ControlPlane.GetAPIServer().Configure().Set("enable-admission-plugins", strings.Join(opts.AdmissionPlugins, ","))
	}
	if opts.AdmissionWebhooksOff {
		env.ControlPlane.GetAPIServer().Configure().Append("disable-admission-plugins", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")
	}
	cp.startAttempted = true
	cfg, err := env.Start()
	if err != nil {
		// Whatever did start must not outlive the failure.
		return nil, errors.Join(fmt.Errorf("starting the local control plane from %s: %w", opts.BinaryDir, err), cp.Stop())
	}
	cp.Config, cp.Kubeconfig = cfg, env.KubeConfig
	if opts.Webhooks {
		if err := installAdmissionWebhooks(context.Background(), cfg, opts.WebhookManifests, cp.Webhook); err != nil {
			return nil, errors.Join(err, cp.Stop())
		}
	}
	if opts.ControllerManager {
		if cp.controllerManager, err = startControllerManager(cp, filepath.Join(opts.BinaryDir, controllerManagerBinary), opts.Output); err != nil {
			return nil, errors.Join(err, cp.Stop())
		}
	}
	if opts.KubeconfigPath != "" {
		if err := writeFile(opts.KubeconfigPath, env.KubeConfig); err != nil {
			return nil, errors.Join(err, cp.Stop())
		}
		cp.kubeconfigPath = opts.KubeconfigPath
	}
	return cp, nil
}

// AddUser provisions a user with a client certificate and returns its client
// configuration: tests and the manager use it to act as someone other than
// the admin.
func (c *ControlPlane) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, rest.CopyConfig(c.Config))
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	cfg := u.Config()
	// The user's config starts afresh: without envtest's limits it would get
	// client-go's default of 5 requests per second.
	cfg.QPS, cfg.Burst = c.Config.QPS, c.Config.Burst
	return cfg, nil
}

// keepAPIServerCertificates gives the apiserver a certificate directory of
// the control plane's own (removed by Stop). envtest's default is one it
// removes when the apiserver stops, so that a restarted apiserver would
// serve under a new CA that no client trusts.
func (c *ControlPlane) keepAPIServerCertificates() error {
	dir, err := os.MkdirTemp("", "partner-operator-controlplane-")
	if err != nil {
		return fmt.Errorf("creating the control plane's directory: %w", err)
	}
	c.tempDir = dir
	certDir := filepath.Join(dir, "apiserver")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return fmt.Errorf("creating the apiserver's certificate directory: %w", err)
	}
	apiserver := c.env.ControlPlane.GetAPIServer()
	apiserver.CertDir = certDir
	// Shutting down, the apiserver waits for its open requests; watches
	// never end by themselves, so by default it waits out the whole
	// request timeout (60 s), beyond envtest's stop timeout. With this
	// flag (as on clusters that restart their apiservers in rotation) it
	// answers 429 Retry-After while in-flight requests drain, then gives
	// the watches 2 s.
	apiserver.Configure().Set("shutdown-send-retry-after", "true")
	return nil
}

// RestartAPIServer stops the kube-apiserver and starts it again on the same
// address, with the same certificates and the same etcd, which keeps
// running: what a rolling restart of a cluster's apiserver does to the
// operator's connections and watches. It returns once the apiserver is
// healthy again.
func (c *ControlPlane) RestartAPIServer() error {
	apiserver := c.env.ControlPlane.GetAPIServer()
	if err := apiserver.Stop(); err != nil {
		return fmt.Errorf("stopping the kube-apiserver: %w", err)
	}
	if err := apiserver.Start(); err != nil {
		return fmt.Errorf("starting the kube-apiserver again: %w", err)
	}
	return nil
}

// RestartAPIServerWithAuthorizationConfig restarts the kube-apiserver as
// RestartAPIServer does, with --authorization-config=path in place of the
// authorizers it had: what a cluster admin does to each control-plane node
// following docs/authorization-webhook.md. The file is used as it is, and
// the apiserver re-reads it when it changes.
func (c *ControlPlane) RestartAPIServerWithAuthorizationConfig(path string) error {
	args := c.env.ControlPlane.GetAPIServer().Configure()
	args.Disable("authorization-mode") // --authorization-config replaces it
	args.Set("authorization-config", path)
	return c.RestartAPIServer()
}

// prepareWebhooks issues the webhook serving and client certificates and
// gives the apiserver the authorization and admission configurations, before
// the apiserver starts.
func (c *ControlPlane) prepareWebhooks(opts Options) error {
	dir := c.tempDir
	var err error
	if c.Webhook, err = newWebhookServing(dir); err != nil {
		return err
	}
	configPath, err := writeAuthorizationConfig(dir, opts.AuthorizationConfig, c.Webhook, authzserver.Path)
	if err != nil {
		return err
	}
	admissionPath, err := writeAdmissionConfig(dir, opts.AdmissionConfig, c.Webhook)
	if err != nil {
		return err
	}
	args := c.env.ControlPlane.GetAPIServer().Configure()
	args.Disable("authorization-mode") // --authorization-config replaces it
	args.Set("authorization-config", configPath)
	args.Set("admission-control-config-file", admissionPath)
	return nil
}

// Stop stops kube-controller-manager, kube-apiserver and etcd and removes
// their data, the apiserver's and the webhook's certificates and the
// kubeconfig that Start wrote.
func (c *ControlPlane) Stop() error {
	var err error
	// The controller manager first: without its apiserver it would retry
	// until it is killed.
	if c.controllerManager != nil {
		err = c.controllerManager.stop()
		c.controllerManager = nil
	}
	if c.startAttempted {
		err = errors.Join(err, c.env.Stop())
	}
	if c.tempDir != "" {
		err = errors.Join(err, os.RemoveAll(c.tempDir))
	}
	if c.kubeconfigPath != "" {
		if rmErr := os.Remove(c.kubeconfigPath); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	return err
}

func (o *Options) complete() error {
	if o.Webhooks && o.AdmissionWebhooksOff {
		return errors.New("the local control plane: Webhooks and AdmissionWebhooksOff exclude each other")
	}
	var root string
	if o.BinaryDir == "" {
		o.BinaryDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.BinaryDir == "" || o.CRDDir == "" || o.AuthorizationConfig == "" || o.AdmissionConfig == "" || o.WebhookManifests == "" {
		var err error
		if root, err = RepositoryRoot(); err != nil {
			return err
		}
	}
	if o.BinaryDir == "" {
		o.BinaryDir = filepath.Join(root, "bin", "k8s", KubernetesVersion)
	}
	if o.CRDDir == "" {
		o.CRDDir = filepath.Join(root, "config", "crd", "bases")
	}
	if o.AuthorizationConfig == "" {
		o.AuthorizationConfig = filepath.Join(root, "config", "authorization", "authorization-config.yaml")
	}
	if o.AdmissionConfig == "" {
		o.AdmissionConfig = filepath.Join(root, "config", "authorization", "admission-config.yaml")
	}
	if o.WebhookManifests == "" {
		o.WebhookManifests = filepath.Join(root, "config", "webhook", "manifests.yaml")
	}
	bins := []string{"etcd", "kube-apiserver"}
	if o.ControllerManager {
		bins = append(bins, controllerManagerBinary)
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(o.BinaryDir, bin)); err != nil {
			return fmt.Errorf("%s not found in %s: run hack/setup-envtest.sh (make setup-envtest) to build it: %w", bin, o.BinaryDir, err)
		}
	}
	return nil
}

// BinaryDir is where the control-plane binaries (and kubectl) are:
// $KUBEBUILDER_ASSETS, else bin/k8s/<KubernetesVersion> of the repository.
func BinaryDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepositoryRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "k8s", KubernetesVersion), nil
}

// Kustomize renders a kustomization directory of the repository with the
// kubectl that hack/setup-envtest.sh builds.
func Kustomize(dir string) ([]byte, error) {
	root, err := RepositoryRoot()
	if err != nil {
		return nil, err
	}
	bin, err := BinaryDir()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(filepath.Join(bin, "kubectl"), "kustomize", filepath.Join(root, dir)).Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w", dir, err)
	}
	return out, nil
}

// RepositoryRoot returns the nearest directory at or above the working
// directory that holds this module's go.mod.
func RepositoryRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod of github.com/roompro/partner-operator at or above the working directory")
		}
		dir = parent
	}
}

func isModuleRoot(goMod string) bool {
	data, err := os.ReadFile(goMod)
	return err == nil && strings.HasPrefix(string(data), "module github.com/roompro/partner-operator\n")
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	// 0600: it holds an admin client certificate.
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}
