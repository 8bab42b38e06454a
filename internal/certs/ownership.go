package certs

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// CertManagerCertificateAnnotation is what cert-manager writes on every
// Secret a Certificate of it issues: the Certificate's name.
const CertManagerCertificateAnnotation = "cert-manager.io/certificate-name"

// CheckSelfSignedMayTakeOver refuses a Secret that cert-manager writes: the
// self-signed provisioning would overwrite it and cert-manager would write
// it back, each renewal undoing the other's, with the webhook
// configurations' caBundle following whichever wrote last. It happens when
// config/default is applied over an install of config/cert-manager (its
// Deployment asks for self-signed certificates); the error says what to do
// instead. A Secret that is missing, or the operator's own, passes.
func CheckSelfSignedMayTakeOver(secret *corev1.Secret) error {
	if secret == nil {
		return nil
	}
	certificate, ok := secret.Annotations[CertManagerCertificateAnnotation]
	if !ok {
		return nil
	}
	return fmt.Errorf("the webhook certificate Secret %s/%s is written by cert-manager (Certificate %q), "+
		"but this manager runs with --cert-provisioning=self-signed, which would take it over: "+
		"the overlay applied is config/default over an install of config/cert-manager. "+
		"Re-apply config/cert-manager (make deploy OVERLAY=config/cert-manager; Helm: certificates.mode=cert-manager); "+
		"to switch to the operator's own certificates instead, delete that Certificate and the Secret first (docs/upgrade.md)",
		secret.Namespace, secret.Name, certificate)
}
