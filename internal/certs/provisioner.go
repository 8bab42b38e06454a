package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults of the Provisioner.
const (
	DefaultValidity     = 90 * 24 * time.Hour
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultRetiredTrust = 10 * time.Minute
	DefaultResync       = time.Minute
)

// Provisioner keeps the serving certificate valid and its CA trusted. It
// runs on every replica (each one serves webhooks); the Secret's
// resourceVersion arbitrates when two replicas write at once.
type Provisioner struct {
	// Client reads and writes directly (no cache): it runs before the cache
	// starts, and needs only one Secret and two webhook configurations.
	Client client.Client
	Clock  clock.Clock
	// Events, when set, receives an Event on the Secret for each step.
	Events events.EventRecorder

	Namespace  string
	SecretName string
	// DNSNames the certificate is valid for: the webhook Service's names.
	DNSNames []string
	// IPAddresses the certificate is valid for, if any.
	IPAddresses []net.IP
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name
	// the configurations whose caBundle is kept current.
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string

	// Validity of a serving certificate (default 90 days), renewed when a
	// third of it is left; CAValidity of the CA (default ten years).
	Validity, CAValidity time.Duration
	// RetiredTrust is how long the CA of before a rotation stays trusted
	// once the serving certificate is from the new one (default ten
	// minutes).
	RetiredTrust time.Duration
	// Resync is how often, in real time, the Secret is read again: for a
	// rotation request, or what another replica wrote (default a minute).
	Resync time.Duration
}

// NeedLeaderElection is false: every replica needs the certificate files.
func (p *Provisioner) NeedLeaderElection() bool { return false }

// Start provisions at once, then again when something is due or every
// Resync, until ctx ends.
func (p *Provisioner) Start(ctx context.Context) error {
	for {
		next, err := p.Ensure(ctx)
		if err != nil {
			log.FromContext(ctx).Error(err, "provisioning the webhook certificate; retrying in a minute")
			next = p.Clock.Now().Add(time.Minute)
		}
		due := p.Clock.NewTimer(max(next.Sub(p.Clock.Now()), 0))
		resync := time.NewTimer(p.resync())
		select {
		case <-ctx.Done():
		case <-due.C():
		case <-resync.C:
		}
		due.Stop()
		resync.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (p *Provisioner) resync() time.Duration {
	if p.Resync == 0 {
		return DefaultResync
	}
	return p.Resync
}

// Policy is the Provisioner's settings with their defaults.
func (p *Provisioner) Policy() Policy {
	pol := Policy{DNSNames: p.DNSNames, IPs: p.IPAddresses, Validity: p.Validity, CAValidity: p.CAValidity, RetiredTrust: p.RetiredTrust}
	if pol.Validity == 0 {
		pol.Validity = DefaultValidity
	}
	if pol.CAValidity == 0 {
		pol.CAValidity = DefaultCAValidity
	}
	if pol.RetiredTrust == 0 {
		pol.RetiredTrust = DefaultRetiredTrust
	}
	return pol
}

// errRetry: another replica wrote the Secret first; read it again.
var errRetry = errors.New("the Secret changed meanwhile")

// Ensure brings the Secret, the webhook configurations and CertDir to what
// Decide asks for, one step at a time: first what is trusted (stored, then
// written into every caBundle), then the serving certificate, which is
// stored only once every caBundle carries its CA. It returns when to look
// again.
func (p *Provisioner) Ensure(ctx context.Context) (time.Time, error) {
	pol := p.Policy()
	if err := pol.Validate(); err != nil {
		return time.Time{}, err
	}
	// Each step changes something; a handful is the most a Secret needs
	// (create the CA, issue, and the retries of a race between replicas).
	for range 10 {
		secret, st, err := p.read(ctx)
		if err != nil {
			return time.Time{}, err
		}
		now := p.Clock.Now()
		d := Decide(st, now, pol)
		if d.ChangesTrust() {
			if err := p.write(ctx, secret, st, d, now, pol); err != nil && !errors.Is(err, errRetry) {
				return time.Time{}, err
			}
			continue
		}
		bundle := EncodeBundle(st.Bundle())
		if !bytes.Equal(secret.Data[KeyTrustBundle], bundle) {
			// Someone edited ca.crt: it is derived, write it again.
			if err := p.write(ctx, secret, st, Decision{}, now, pol); err != nil && !errors.Is(err, errRetry) {
				return time.Time{}, err
			}
			continue
		}
		published, err := p.publish(ctx, bundle)
		if err != nil {
			return time.Time{}, err
		}
		if d.ChangesServing() {
			signer := d.Signer(st).Certificate()
			if lacking := published.lacking(signer); len(lacking) > 0 {
				return time.Time{}, fmt.Errorf("not writing a serving certificate of the CA %q: the caBundle of %v does not carry it yet", signer.Subject.CommonName, lacking)
			}
			if err := p.write(ctx, secret, st, d, now, pol); err != nil && !errors.Is(err, errRetry) {
				return time.Time{}, err
			}
			continue
		}
		if err := p.writeFiles(st); err != nil {
			return time.Time{}, err
		}
		return d.Wake, nil
	}
	return time.Time{}, fmt.Errorf("the Secret %s/%s kept changing while provisioning", p.Namespace, p.SecretName)
}

// read gets the Secret (a new one when there is none) and parses it.
func (p *Provisioner) read(ctx context.Context) (*corev1.Secret, State, error) {
	secret := &corev1.Secret{}
	err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.SecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.SecretName}, Type: corev1.SecretTypeTLS}
	case err != nil:
		return nil, State{}, fmt.Errorf("reading Secret %s/%s: %w", p.Namespace, p.SecretName, err)
	}
	st, err := ParseState(secret.Data, secret.Annotations)
	if err != nil {
		return nil, State{}, fmt.Errorf("the Secret %s/%s: %w; fix or restore it (deleting it starts a new CA that no apiserver trusts yet)", p.Namespace, p.SecretName, err)
	}
	return secret, st, nil
}

// write applies d to st and stores the result, guarded by the Secret's
// resourceVersion; errRetry when another replica wrote first.
func (p *Provisioner) write(ctx context.Context, secret *corev1.Secret, st State, d Decision, now time.Time, pol Policy) error {
	next, err := Apply(st, d, now, pol)
	if err != nil {
		return err
	}
	if secret.Data, err = next.Data(); err != nil {
		return err
	}
	if next.Request == "" {
		delete(secret.Annotations, RotationAnnotation)
	}
	if secret.ResourceVersion == "" {
		err = p.Client.Create(ctx, secret)
	} else {
		err = p.Client.Update(ctx, secret)
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("storing the webhook certificate Secret %s/%s: %w", p.Namespace, p.SecretName, err)
	}
	logger := log.FromContext(ctx).WithValues("secret", client.ObjectKeyFromObject(secret), "signingCA", next.Signing.Certificate().Subject.CommonName)
	for _, n := range d.Notes {
		logger.Info(n.Message, "reason", n.Reason)
		if p.Events != nil {
			kind := corev1.EventTypeNormal
			if n.Warning {
				kind = corev1.EventTypeWarning
			}
			p.Events.Eventf(secret, nil, kind, n.Reason, "ProvisionWebhookCertificate", "%s", n.Message)
		}
	}
	return nil
}

// published is the caBundle of every webhook the operator keeps, as the
// apiserver stored it, by "<configuration>/<webhook>".
type published map[string][]byte

// lacking names the webhooks whose caBundle does not carry ca, in order.
func (p published) lacking(ca *x509.Certificate) []string {
	var out []string
	for name, bundle := range p {
		if !BundleCarries(bundle, ca) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// publish makes the caBundle of every webhook of the two configurations
// bundle, and returns what the apiserver stored. A configuration that does
// not exist is skipped: no request reaches the server through it.
func (p *Provisioner) publish(ctx context.Context, bundle []byte) (published, error) {
	out := published{}
	var errs []error
	if p.MutatingWebhookConfiguration != "" {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, p.patchCABundles(ctx, p.MutatingWebhookConfiguration, m, bundle, out, func() []*admissionregistrationv1.WebhookClientConfig {
			ccs := make([]*admissionregistrationv1.WebhookClientConfig, 0, len(m.Webhooks))
			for i := range m.Webhooks {
				ccs = append(ccs, &m.Webhooks[i].ClientConfig)
			}
			return ccs
		}, func(i int) string { return m.Webhooks[i].Name }))
	}
	if p.ValidatingWebhookConfiguration != "" {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, p.patchCABundles(ctx, p.ValidatingWebhookConfiguration, v, bundle, out, func() []*admissionregistrationv1.WebhookClientConfig {
			ccs := make([]*admissionregistrationv1.WebhookClientConfig, 0, len(v.Webhooks))
			for i := range v.Webhooks {
				ccs = append(ccs, &v.Webhooks[i].ClientConfig)
			}
			return ccs
		}, func(i int) string { return v.Webhooks[i].Name }))
	}
	return out, errors.Join(errs...)
}

// patchCABundles sets the caBundle of each client config of the
// configuration name (read into obj) to bundle, and records in out what
// the apiserver stored.
func (p *Provisioner) patchCABundles(ctx context.Context, name string, obj client.Object, bundle []byte, out published,
	configs func() []*admissionregistrationv1.WebhookClientConfig, webhook func(int) string) error {
	if err := p.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			log.FromContext(ctx).V(1).Info("no such webhook configuration; nothing to keep trusting the certificate", "configuration", name)
			return nil
		}
		return fmt.Errorf("reading webhook configuration %s: %w", name, err)
	}
	before := obj.DeepCopyObject().(client.Object)
	changed := false
	for _, cc := range configs() {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle, changed = bundle, true
		}
	}
	if changed {
		// Optimistic: a configuration changed meanwhile is read again on
		// the next round, never overwritten with what this one read.
		if err := p.Client.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching the caBundle of %s: %w", name, err)
		}
		log.FromContext(ctx).Info("updated the caBundle of a webhook configuration", "configuration", name, "cas", len(mustParse(bundle)))
	}
	for i, cc := range configs() {
		out[name+"/"+webhook(i)] = cc.CABundle
	}
	return nil
}

// mustParse counts on bundle being what EncodeBundle wrote.
func mustParse(bundle []byte) []*x509.Certificate {
	cas, _ := parseCertificates(bundle)
	return cas
}

// writeFiles puts the serving certificate where the webhook server reads
// it; the server's certificate watcher picks up a change without a
// restart. Between the two renames the files do not match; the watcher
// then keeps the pair it has (it loads only a matching pair), and takes the
// new one at the second rename or its next poll.
func (p *Provisioner) writeFiles(st State) error {
	if err := os.MkdirAll(p.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p.CertDir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{keyKey, st.ServingKey}, {keyCert, st.ServingCert}} {
		path := filepath.Join(p.CertDir, f.name)
		if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, f.data) {
			continue
		}
		// Write then rename, so the server never reads half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}
