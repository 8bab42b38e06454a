// Package certs provisions the webhook server's serving certificate when
// cert-manager is not installed: a self-signed CA and a serving certificate
// for the webhook Service, kept in a Secret, written to the directory the
// webhook server reads, renewed before they expire, and trusted by the
// operator's own webhook configurations through their caBundle.
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Keys of the Secret.
const (
	keyCA    = "ca.crt" // the CAs the apiserver trusts: the current one, and the previous one while it is valid
	keyCert  = "tls.crt"
	keyKey   = "tls.key"
	keyCAKey = "ca.key"
)

// Provisioner keeps the serving certificate valid. It runs on every replica
// (each one serves webhooks); the Secret's resourceVersion arbitrates when
// two replicas renew at once.
type Provisioner struct {
	// Client reads and writes directly (no cache): it runs before the cache
	// starts, and needs only one Secret and two webhook configurations.
	Client client.Client
	Clock  clock.Clock

	Namespace  string
	SecretName string
	// DNSNames the certificate is valid for: the webhook Service's names.
	DNSNames []string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name
	// the configurations whose caBundle is kept current.
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string

	// Validity of a certificate (default 90 days); it is renewed when less
	// than a third of it is left.
	Validity time.Duration
}

// NeedLeaderElection is false: every replica needs the certificate files.
func (p *Provisioner) NeedLeaderElection() bool { return false }

// Start provisions at once, then again at each renewal time, until ctx ends.
func (p *Provisioner) Start(ctx context.Context) error {
	for {
		next, err := p.Ensure(ctx)
		if err != nil {
			log.FromContext(ctx).Error(err, "provisioning the webhook certificate; retrying in a minute")
			next = p.Clock.Now().Add(time.Minute)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.Clock.After(next.Sub(p.Clock.Now())):
		}
	}
}

func (p *Provisioner) validity() time.Duration {
	if p.Validity == 0 {
		return 90 * 24 * time.Hour
	}
	return p.Validity
}

// Ensure makes the Secret hold a certificate that is not due for renewal,
// writes it to CertDir and puts its CA into the webhook configurations. It
// returns when the certificate is next due.
func (p *Provisioner) Ensure(ctx context.Context) (time.Time, error) {
	secret := &corev1.Secret{}
	err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.SecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.SecretName}, Type: corev1.SecretTypeTLS}
	case err != nil:
		return time.Time{}, fmt.Errorf("reading Secret %s/%s: %w", p.Namespace, p.SecretName, err)
	}

	renewAt, current := p.renewalTime(secret.Data)
	if !current || !p.Clock.Now().Before(renewAt) {
		if err := p.issue(secret); err != nil {
			return time.Time{}, err
		}
		if secret.ResourceVersion == "" {
			err = p.Client.Create(ctx, secret)
		} else {
			err = p.Client.Update(ctx, secret) // guarded by resourceVersion
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return p.Ensure(ctx) // another replica renewed first: use its certificate
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("storing the webhook certificate: %w", err)
		}
		renewAt, _ = p.renewalTime(secret.Data)
		log.FromContext(ctx).Info("issued a new webhook serving certificate", "secret", p.SecretName, "renewAt", renewAt)
	}
	if err := p.writeFiles(secret.Data); err != nil {
		return time.Time{}, err
	}
	if err := p.patchCABundles(ctx, secret.Data[keyCA]); err != nil {
		return time.Time{}, err
	}
	return renewAt, nil
}

// renewalTime is when the stored certificate is due: two thirds into its
// validity. current is false when there is no usable certificate.
func (p *Provisioner) renewalTime(data map[string][]byte) (time.Time, bool) {
	cert, err := parseCertificate(data[keyCert])
	if err != nil || len(data[keyKey]) == 0 || len(data[keyCA]) == 0 {
		return time.Time{}, false
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(lifetime * 2 / 3), true
}

// issue writes a new CA and serving certificate into the secret, keeping the
// previous CA in ca.crt while it is valid, so that the apiserver trusts both
// the old and the new certificate while the replicas switch.
func (p *Provisioner) issue(secret *corev1.Secret) error {
	now := p.Clock.Now()
	issued, err := Issue(now, p.validity(), p.DNSNames, nil)
	if err != nil {
		return err
	}
	bundle := issued.CA
	if previous, err := parseCertificate(secret.Data[keyCA]); err == nil && now.Before(previous.NotAfter) {
		bundle = append(bundle, pemCert(previous.Raw)...)
	}
	secret.Data = map[string][]byte{keyCA: bundle, keyCert: issued.Cert, keyKey: issued.Key}
	return nil
}

// Issued is a CA and a certificate it signed, with its key, in PEM.
type Issued struct {
	CA, Cert, Key []byte
}

// Issue creates a CA and a serving certificate for dnsNames and ips, valid
// from now (less a little clock skew) for validity. The CA's key is used once
// and thrown away: nothing else can ever be signed with it. The first DNS
// name is the certificate's common name.
func Issue(now time.Time, validity time.Duration, dnsNames []string, ips []net.IP) (Issued, error) {
	return issue(now, validity, &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames, IPAddresses: ips,
	})
}

// IssueClient creates a CA and a client certificate with the common name
// commonName, as Issue does a serving certificate: what the kube-apiserver
// presents to the webhook server, whose --webhook-client-ca-file is the CA.
func IssueClient(now time.Time, validity time.Duration, commonName string) (Issued, error) {
	return issue(now, validity, &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// issue signs template (its subject, key usages and names) with a fresh CA,
// whose key it then forgets.
func issue(now time.Time, validity time.Duration, template *x509.Certificate) (Issued, error) {
	ca, err := NewCA(now, validity, "partner-operator webhook CA")
	if err != nil {
		return Issued{}, err
	}
	return ca.sign(now, validity, template)
}

// CA is a certificate authority that keeps its key, to sign several
// certificates. Issue and IssueClient use one once and forget it.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA's certificate, as a client or server trusts it.
	PEM []byte
}

// NewCA creates a self-signed CA named commonName, valid from now (less a
// little clock skew) for validity.
func NewCA(now time.Time, validity time.Duration, commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA: %w", err)
	}
	return &CA{cert: cert, key: key, PEM: pemCert(der)}, nil
}

// SignClient signs a client certificate with the common name commonName.
func (ca *CA) SignClient(now time.Time, validity time.Duration, commonName string) (Issued, error) {
	return ca.sign(now, validity, &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// sign signs template (its subject, key usages and names) with a new key.
func (ca *CA) sign(now time.Time, validity time.Duration, template *x509.Certificate) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("generating the certificate's key: %w", err)
	}
	if template.SerialNumber, err = serialNumber(); err != nil {
		return Issued{}, err
	}
	template.NotBefore, template.NotAfter = now.Add(-5*time.Minute), now.Add(validity)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("signing the certificate %s: %w", template.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Issued{}, fmt.Errorf("encoding the certificate's key: %w", err)
	}
	return Issued{CA: ca.PEM, Cert: pemCert(der), Key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}, nil
}

// serialNumber is a random 126-bit serial number, as RFC 5280 wants them
// unique per CA.
func serialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return serial, nil
}

// writeFiles puts the certificate where the webhook server reads it; the
// server's certificate watcher picks up a change without a restart.
func (p *Provisioner) writeFiles(data map[string][]byte) error {
	if err := os.MkdirAll(p.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p.CertDir, err)
	}
	for _, name := range []string{keyCert, keyKey} {
		path := filepath.Join(p.CertDir, name)
		if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, data[name]) {
			continue
		}
		// Write then rename, so the server never reads half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data[name], 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// patchCABundles sets caBundle on every webhook of the two configurations.
func (p *Provisioner) patchCABundles(ctx context.Context, ca []byte) error {
	var errs []error
	if p.MutatingWebhookConfiguration != "" {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, p.patch(ctx, p.MutatingWebhookConfiguration, m, func() bool {
			changed := false
			for i := range m.Webhooks {
				if !bytes.Equal(m.Webhooks[i].ClientConfig.CABundle, ca) {
					m.Webhooks[i].ClientConfig.CABundle, changed = ca, true
				}
			}
			return changed
		}))
	}
	if p.ValidatingWebhookConfiguration != "" {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, p.patch(ctx, p.ValidatingWebhookConfiguration, v, func() bool {
			changed := false
			for i := range v.Webhooks {
				if !bytes.Equal(v.Webhooks[i].ClientConfig.CABundle, ca) {
					v.Webhooks[i].ClientConfig.CABundle, changed = ca, true
				}
			}
			return changed
		}))
	}
	return errors.Join(errs...)
}

func (p *Provisioner) patch(ctx context.Context, name string, obj client.Object, set func() bool) error {
	if err := p.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		return fmt.Errorf("reading webhook configuration %s: %w", name, err)
	}
	before := obj.DeepCopyObject().(client.Object)
	if !set() {
		return nil
	}
	if err := p.Client.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching the caBundle of %s: %w", name, err)
	}
	return nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// parseCertificate parses the first certificate of a PEM bundle.
func parseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
