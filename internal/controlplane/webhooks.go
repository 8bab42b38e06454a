package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/internal/certs"
	"github.com/roompro/partner-operator/internal/webhookauth"
)

// WebhookServing is where the manager's webhook server must listen so that
// the local apiserver reaches it (admission webhooks and the authorizer),
// and how it knows the apiserver (Callers).
type WebhookServing struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, signed by CA.
	CertDir string
	// CA is the PEM certificate the apiserver trusts for the webhooks.
	CA []byte
	// ClientCAFile is the PEM file of the CA of the client certificate the
	// apiserver presents to the webhooks (its common name is
	// webhookauth.DefaultAllowedName): the manager's --webhook-client-ca-file.
	ClientCAFile string
	// AuthorizerCAFile is the file of the CAs the apiserver trusts for the
	// authorization webhook: its kubeconfig names it (certificate-authority),
	// as the kubeconfig on a control-plane host does. SetAuthorizerCAs
	// replaces it.
	AuthorizerCAFile string
	// clientCert and clientKey are that certificate, in PEM.
	clientCert, clientKey []byte
}

// SetAuthorizerCAs replaces the CAs the apiserver trusts for the
// authorization webhook (PEM, one or more), as a cluster admin replaces
// the file on each control-plane host. The apiserver reads the file again
// on its first webhook call five minutes or more after it last did
// (client-go's CA file reload, on by default since Kubernetes 1.36; its
// metric rest_client_transport_ca_reload_total counts it), and at once
// when it restarts (ControlPlane.RestartAPIServer): never half a file, as
// it is written under another name and renamed.
func (w *WebhookServing) SetAuthorizerCAs(bundle []byte) error {
	tmp := w.AuthorizerCAFile + ".tmp"
	if err := os.WriteFile(tmp, bundle, 0o600); err != nil {
		return fmt.Errorf("writing the authorization webhook's CAs: %w", err)
	}
	if err := os.Rename(tmp, w.AuthorizerCAFile); err != nil {
		return fmt.Errorf("writing the authorization webhook's CAs: %w", err)
	}
	return nil
}

// Callers is how the manager's webhook server authenticates this control
// plane's apiserver: operator.Options.WebhookCallers.
func (w *WebhookServing) Callers() webhookauth.Options {
	return webhookauth.Options{ClientCAFile: w.ClientCAFile, AllowedNames: []string{webhookauth.DefaultAllowedName}}
}

// URL is the address of path on the webhook server.
func (w *WebhookServing) URL(path string) string {
	return "https://" + net.JoinHostPort(w.Host, strconv.Itoa(w.Port)) + path
}

// newWebhookServing picks a free loopback port and issues a serving
// certificate for it, under dir.
func newWebhookServing(dir string) (*WebhookServing, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port for the webhooks: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return nil, fmt.Errorf("finding a free port for the webhooks: %w", err)
	}
	ca, err := writeServingCertificate(dir, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	ws := &WebhookServing{Host: "127.0.0.1", Port: port, CertDir: dir, CA: ca}
	if err := ws.issueClientCertificate(dir); err != nil {
		return nil, err
	}
	return ws, nil
}

// issueClientCertificate issues the apiserver's client certificate for the
// webhooks, valid for a week, and writes its CA to dir/client-ca.crt.
func (w *WebhookServing) issueClientCertificate(dir string) error {
	issued, err := certs.IssueClient(time.Now(), 7*24*time.Hour, webhookauth.DefaultAllowedName)
	if err != nil {
		return fmt.Errorf("issuing the apiserver's webhook client certificate: %w", err)
	}
	w.ClientCAFile = filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(w.ClientCAFile, issued.CA, 0o600); err != nil {
		return fmt.Errorf("writing the webhook client CA: %w", err)
	}
	w.clientCert, w.clientKey = issued.Cert, issued.Key
	return nil
}

// ClientTLSConfig calls the webhook server as the apiserver does: trusting
// CA, with the apiserver's client certificate. For tests that post reviews
// straight to a webhook server.
func (w *WebhookServing) ClientTLSConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(w.clientCert, w.clientKey)
	if err != nil {
		return nil, fmt.Errorf("loading the apiserver's webhook client certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(w.CA) {
		return nil, errors.New("the webhook serving CA holds no certificate")
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// clientAuthInfo is the apiserver's credential for the webhooks, as a
// kubeconfig user.
func (w *WebhookServing) clientAuthInfo() *clientcmdapi.AuthInfo {
	return &clientcmdapi.AuthInfo{ClientCertificateData: w.clientCert, ClientKeyData: w.clientKey}
}

// writeServingCertificate writes tls.crt and tls.key for ip and localhost,
// signed by a fresh CA valid for a week, and returns the CA certificate in PEM.
func writeServingCertificate(dir, ip string) ([]byte, error) {
	issued, err := certs.Issue(time.Now(), 7*24*time.Hour, []string{"localhost"}, []net.IP{net.ParseIP(ip)})
	if err != nil {
		return nil, fmt.Errorf("issuing the webhook serving certificate: %w", err)
	}
	for name, data := range map[string][]byte{"tls.crt": issued.Cert, "tls.key": issued.Key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing the webhook %s: %w", name, err)
		}
	}
	return issued.CA, nil
}

// authorizerName names the partner-operator's webhook authorizer in the
// shipped config/authorization files, and the cluster and context of the
// kubeconfig it is pointed at.
const authorizerName = "partner-operator"

// writeAuthorizationConfig copies the shipped AuthorizationConfiguration with
// its webhook pointed at the local webhook server, and returns its path.
func writeAuthorizationConfig(dir, shipped string, ws *WebhookServing, authorizePath string) (string, error) {
	// The CA is a file the kubeconfig names, as on a control-plane host,
	// so that a test can replace it as an admin would (SetAuthorizerCAs).
	ws.AuthorizerCAFile = filepath.Join(dir, "authorization-webhook-ca.crt")
	if err := ws.SetAuthorizerCAs(ws.CA); err != nil {
		return "", err
	}
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[authorizerName] = &clientcmdapi.Cluster{Server: ws.URL(authorizePath), CertificateAuthority: ws.AuthorizerCAFile}
	kubeconfig.AuthInfos["kube-apiserver"] = ws.clientAuthInfo()
	kubeconfig.Contexts[authorizerName] = &clientcmdapi.Context{Cluster: authorizerName, AuthInfo: "kube-apiserver"}
	kubeconfig.CurrentContext = authorizerName
	kubeconfigPath := filepath.Join(dir, "authorization-webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, kubeconfigPath); err != nil {
		return "", fmt.Errorf("writing the authorization webhook kubeconfig: %w", err)
	}

	data, err := os.ReadFile(shipped)
	if err != nil {
		return "", fmt.Errorf("reading the authorization configuration: %w", err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(data, &config); err != nil {
		return "", fmt.Errorf("parsing %s: %w", shipped, err)
	}
	authorizers, _ := config["authorizers"].([]any)
	pointed := false
	for _, a := range authorizers {
		authorizer, _ := a.(map[string]any)
		webhook, _ := authorizer["webhook"].(map[string]any)
		if authorizer["name"] != authorizerName || webhook == nil {
			continue
		}
		connection, _ := webhook["connectionInfo"].(map[string]any)
		if connection == nil {
			return "", fmt.Errorf("%s: the partner-operator webhook has no connectionInfo", shipped)
		}
		connection["kubeConfigFile"] = kubeconfigPath
		pointed = true
	}
	if !pointed {
		return "", fmt.Errorf("%s has no Webhook authorizer named partner-operator", shipped)
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encoding the authorization configuration: %w", err)
	}
	path := filepath.Join(dir, "authorization-config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("writing the authorization configuration: %w", err)
	}
	return path, nil
}

// admissionPlugins are the admission plugins that call webhooks; the
// shipped AdmissionConfiguration configures both.
var admissionPlugins = []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"}

// writeAdmissionConfig copies the shipped AdmissionConfiguration with the
// webhook plugins' kubeConfigFile pointed at a kubeconfig whose user is the
// apiserver's client certificate, for the local webhook server's host:port
// (the name the apiserver looks a URL webhook's credentials up by), and
// returns its path.
func writeAdmissionConfig(dir, shipped string, ws *WebhookServing) (string, error) {
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.AuthInfos[net.JoinHostPort(ws.Host, strconv.Itoa(ws.Port))] = ws.clientAuthInfo()
	kubeconfigPath := filepath.Join(dir, "admission-webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, kubeconfigPath); err != nil {
		return "", fmt.Errorf("writing the admission webhook kubeconfig: %w", err)
	}

	data, err := os.ReadFile(shipped)
	if err != nil {
		return "", fmt.Errorf("reading the admission configuration: %w", err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(data, &config); err != nil {
		return "", fmt.Errorf("parsing %s: %w", shipped, err)
	}
	plugins, _ := config["plugins"].([]any)
	pointed := map[string]bool{}
	for _, p := range plugins {
		plugin, _ := p.(map[string]any)
		name, _ := plugin["name"].(string)
		configuration, _ := plugin["configuration"].(map[string]any)
		if !slices.Contains(admissionPlugins, name) || configuration == nil {
			continue
		}
		configuration["kubeConfigFile"] = kubeconfigPath
		pointed[name] = true
	}
	for _, name := range admissionPlugins {
		if !pointed[name] {
			return "", fmt.Errorf("%s configures no %s with a kubeConfigFile", shipped, name)
		}
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encoding the admission configuration: %w", err)
	}
	path := filepath.Join(dir, "admission-config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("writing the admission configuration: %w", err)
	}
	return path, nil
}

// installAdmissionWebhooks creates the webhook configurations of manifests
// (config/webhook/manifests.yaml, generated by controller-gen) with each
// webhook pointed at the local webhook server.
func installAdmissionWebhooks(ctx context.Context, cfg *rest.Config, manifests string, ws *WebhookServing) error {
	data, err := os.ReadFile(manifests)
	if err != nil {
		return fmt.Errorf("reading the admission webhook manifests: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating a client for the webhook configurations: %w", err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := docs.Read()
		if err != nil {
			break // io.EOF: every document read
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("decoding %s: %w", manifests, err)
		}
		switch o := obj.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			for i := range o.Webhooks {
				pointAt(&o.Webhooks[i].ClientConfig, ws)
			}
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			for i := range o.Webhooks {
				pointAt(&o.Webhooks[i].ClientConfig, ws)
			}
		default:
			return fmt.Errorf("%s: unexpected %T", manifests, obj)
		}
		if err := c.Create(ctx, obj.(client.Object)); err != nil {
			return fmt.Errorf("installing webhook configuration %s: %w", obj.(client.Object).GetName(), err)
		}
	}
	return nil
}

// pointAt replaces a Service reference by the local URL of the same path.
func pointAt(cc *admissionregistrationv1.WebhookClientConfig, ws *WebhookServing) {
	path := ""
	if cc.Service != nil && cc.Service.Path != nil {
		path = *cc.Service.Path
	}
	url := ws.URL(path)
	cc.Service, cc.URL, cc.CABundle = nil, &url, ws.CA
}
