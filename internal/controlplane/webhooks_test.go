package controlplane

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// The apiserver gets the shipped AdmissionConfiguration with both webhook
// plugins pointed at a kubeconfig whose user is named by the webhook's
// host:port (how the apiserver looks up a URL webhook's credentials) and
// holds its client certificate; the authorization kubeconfig's user holds
// the same.
func TestTheAPIServerPresentsItsClientCertificate(t *testing.T) {
	root, err := RepositoryRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ws, err := newWebhookServing(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ws.ClientCAFile); err != nil {
		t.Fatalf("no client CA file: %v", err)
	}
	if _, err := ws.ClientTLSConfig(); err != nil {
		t.Fatal(err)
	}

	path, err := writeAdmissionConfig(dir, filepath.Join(root, "config", "authorization", "admission-config.yaml"), ws)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Plugins []struct {
			Name          string
			Configuration struct{ KubeConfigFile string }
		}
	}
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	pointed := map[string]string{}
	for _, p := range config.Plugins {
		pointed[p.Name] = p.Configuration.KubeConfigFile
	}
	for _, plugin := range admissionPlugins {
		kubeconfig, err := clientcmd.LoadFromFile(pointed[plugin])
		if err != nil {
			t.Fatalf("%s: %v", plugin, err)
		}
		user := kubeconfig.AuthInfos[net.JoinHostPort(ws.Host, strconv.Itoa(ws.Port))]
		if user == nil || string(user.ClientCertificateData) != string(ws.clientCert) || len(user.ClientKeyData) == 0 {
			t.Errorf("%s: no user for the webhook's host:port with the client certificate: %+v", plugin, kubeconfig.AuthInfos)
		}
	}

	authzPath, err := writeAuthorizationConfig(dir, filepath.Join(root, "config", "authorization", "authorization-config.yaml"), ws, "/authorize")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(authzPath); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := clientcmd.LoadFromFile(filepath.Join(dir, "authorization-webhook.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if user := kubeconfig.AuthInfos["kube-apiserver"]; user == nil || string(user.ClientCertificateData) != string(ws.clientCert) {
		t.Error("the authorization webhook's user does not hold the client certificate")
	}
	// The CA is a file, as on a control-plane host, so that it can be
	// replaced while the apiserver runs.
	if cluster := kubeconfig.Clusters[authorizerName]; cluster == nil || cluster.CertificateAuthority != ws.AuthorizerCAFile || len(cluster.CertificateAuthorityData) != 0 {
		t.Errorf("the authorization webhook's cluster %+v: want the CA file %s", cluster, ws.AuthorizerCAFile)
	} else if ca, err := os.ReadFile(cluster.CertificateAuthority); err != nil || string(ca) != string(ws.CA) {
		t.Errorf("the CA file holds %q (%v), want the serving CA", ca, err)
	}

	// A configuration without the webhook plugins is an error, not an
	// apiserver that silently calls without its certificate.
	bare := filepath.Join(dir, "bare.yaml")
	if err := os.WriteFile(bare, []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAdmissionConfig(dir, bare, ws); err == nil || !strings.Contains(err.Error(), "ValidatingAdmissionWebhook") {
		t.Errorf("writeAdmissionConfig of a bare configuration: %v, want an error naming the plugin", err)
	}
}
