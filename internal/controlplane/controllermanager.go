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
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controllerManagerBinary is the name of the kube-controller-manager binary
// that hack/setup-envtest.sh builds next to kube-apiserver.
const controllerManagerBinary = "kube-controller-manager"

// controllerManagerControllers are the controllers of kube-controller-manager
// that the local control plane runs: those without which a cluster does not
// behave like one for this operator. Nodes, pods and workloads have no place
// here, and each controller left out is CPU saved on a small machine.
var controllerManagerControllers = []string{
	// Deletes every object of a deleted namespace, then the namespace:
	// without it a deleted namespace stays Terminating forever.
	"namespace-controller",
	// Deletes the objects whose owners are gone (owner references), in the
	// background or before their owner (foreground deletion).
	"garbage-collector-controller",
	// Gives every namespace its "default" ServiceAccount, as every cluster
	// does; its appearance also tells that the controller manager is up.
	"serviceaccount-controller",
}

const (
	// controllerManagerReadyTimeout bounds the wait for the default
	// ServiceAccount of the "default" namespace, the sign that the
	// controllers run.
	controllerManagerReadyTimeout = time.Minute
	// controllerManagerStopTimeout is how long Stop waits after SIGTERM
	// before it kills the process: the controller manager itself gives its
	// controllers up to 10 seconds (--controller-shutdown-timeout).
	controllerManagerStopTimeout = 20 * time.Second
)

// controllerManager is a running kube-controller-manager process.
type controllerManager struct {
	cmd *exec.Cmd
	dir string // its kubeconfig; removed by stop
	// exited is closed once the process has exited; err is then its exit
	// status.
	exited chan struct{}
	err    error
	// tail keeps the end of its output, for the error when it fails.
	tail *tailWriter
}

// startControllerManager starts binary against the control plane c, as the
// user system:kube-controller-manager (the bootstrap RBAC of every cluster
// binds it), with each controller on a ServiceAccount of its own
// (--use-service-account-credentials, as kubeadm runs it): the operator's
// webhooks see the namespace controller and the garbage collector as
// system:serviceaccount:kube-system:namespace-controller and
// ...:generic-garbage-collector, as on a real cluster. It returns once the
// controllers run.
func startControllerManager(c *ControlPlane, binary string, out io.Writer) (*controllerManager, error) {
	dir, err := os.MkdirTemp("", "partner-operator-kcm-")
	if err != nil {
		return nil, fmt.Errorf("creating the kube-controller-manager directory: %w", err)
	}
	cfg, err := c.AddUser("system:kube-controller-manager")
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(kubeconfig, cfg); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}

	tail := &tailWriter{max: 4 << 10}
	var w io.Writer = tail
	if out != nil {
		w = io.MultiWriter(out, tail)
	}
	cmd := exec.Command(binary,
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(controllerManagerControllers, ","),
		"--use-service-account-credentials=true",
		// One instance: nothing to elect, and no lease to wait for.
		"--leader-elect=false",
		// No /healthz or /metrics listener: nothing reads them, and
		// serving them needs delegated authentication.
		"--secure-port=0",
	)
	cmd.Stdout, cmd.Stderr = w, w
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting %s: %w", binary, err), os.RemoveAll(dir))
	}
	m := &controllerManager{cmd: cmd, dir: dir, exited: make(chan struct{}), tail: tail}
	go func() {
		m.err = cmd.Wait()
		close(m.exited)
	}()
	if err := m.waitReady(c.Config); err != nil {
		return nil, errors.Join(err, m.stop())
	}
	return m, nil
}

// waitReady waits until the serviceaccount controller has given the
// "default" namespace its ServiceAccount: the controller manager has then
// reached the apiserver, obtained its controllers' tokens and started them.
func (m *controllerManager) waitReady(admin *rest.Config) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("creating a clientset: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), controllerManagerReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		switch {
		case err == nil:
			return nil
		case !apierrors.IsNotFound(err) && ctx.Err() == nil:
			return fmt.Errorf("waiting for kube-controller-manager: %w", err)
		}
		select {
		case <-m.exited:
			return fmt.Errorf("kube-controller-manager exited (%v) before its controllers ran; its last output:\n%s", m.err, m.tail)
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager did not create the default ServiceAccount within %s; its last output:\n%s",
				controllerManagerReadyTimeout, m.tail)
		case <-tick.C:
		}
	}
}

// stop stops the process (SIGTERM, then SIGKILL after
// controllerManagerStopTimeout), waits for it and removes its directory. A
// process that had exited before is an error: its controllers were not
// running.
func (m *controllerManager) stop() error {
	err := m.terminate()
	return errors.Join(err, os.RemoveAll(m.dir))
}

func (m *controllerManager) terminate() error {
	select {
	case <-m.exited:
		return fmt.Errorf("kube-controller-manager had exited (%v); its last output:\n%s", m.err, m.tail)
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping kube-controller-manager: %w", err)
	}
	select {
	case <-m.exited:
		return nil // the exit status after SIGTERM says nothing
	case <-time.After(controllerManagerStopTimeout):
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing kube-controller-manager: %w", err)
	}
	<-m.exited
	return fmt.Errorf("kube-controller-manager did not stop within %s of SIGTERM; killed it", controllerManagerStopTimeout)
}

// WriteKubeconfig writes cfg, a client certificate configuration from
// AddUser, as a kubeconfig file that only the owner can read: what a
// process of its own (kube-controller-manager, a manager binary) is given.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kubeconfig.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	kubeconfig.CurrentContext = "local"
	if err := clientcmd.WriteToFile(*kubeconfig, path); err != nil {
		return fmt.Errorf("writing the kubeconfig %s: %w", path, err)
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
