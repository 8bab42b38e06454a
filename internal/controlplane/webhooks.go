package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
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
)

// WebhookServing is where the manager's webhook server must listen so that
// the local apiserver reaches it: admission webhooks and the authorizer.
type WebhookServing struct {
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, signed by CA.
	CertDir string
	// CA is the PEM certificate the apiserver trusts for the webhooks.
	CA []byte
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
	return &WebhookServing{Host: "127.0.0.1", Port: port, CertDir: dir, CA: ca}, nil
}

// writeServingCertificate writes tls.crt and tls.key for ip and localhost,
// signed by a fresh CA, and returns the CA certificate in PEM.
func writeServingCertificate(dir, ip string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the webhook CA key: %w", err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "partner-operator local webhook CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the webhook CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parsing the webhook CA: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the webhook serving key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "partner-operator webhook"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the webhook serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the webhook serving key: %w", err)
	}
	files := map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing the webhook %s: %w", name, err)
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// writeAuthorizationConfig copies the shipped AuthorizationConfiguration with
// its webhook pointed at the local webhook server, and returns its path.
func writeAuthorizationConfig(dir, shipped string, ws *WebhookServing, authorizePath string) (string, error) {
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["partner-operator"] = &clientcmdapi.Cluster{Server: ws.URL(authorizePath), CertificateAuthorityData: ws.CA}
	kubeconfig.AuthInfos["kube-apiserver"] = &clientcmdapi.AuthInfo{}
	kubeconfig.Contexts["partner-operator"] = &clientcmdapi.Context{Cluster: "partner-operator", AuthInfo: "kube-apiserver"}
	kubeconfig.CurrentContext = "partner-operator"
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
		if authorizer["name"] != "partner-operator" || webhook == nil {
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
