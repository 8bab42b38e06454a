// Package certs provisions the webhook server's serving certificate when
// cert-manager is not installed. A long-lived CA, name-constrained to the
// webhook Service's names and kept with its key in a Secret, signs
// short-lived serving certificates; renewing one never changes what the
// kube-apiserver must trust. Replacing the CA is a rotation with an overlap:
// the old and the new CA are both trusted while the serving certificate
// switches (rotation.go decides, provisioner.go reads and writes).
package certs

import (
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
	"time"
)

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
	return newCA(now, validity, &x509.Certificate{Subject: pkix.Name{CommonName: commonName}})
}

// NewServingCA creates a CA, as NewCA does, that can sign only for dnsNames
// (and names under them) and ips: x509 name constraints, marked critical, so
// that even a stolen key signs nothing a client takes for another server.
// Without ips it may sign for no IP address at all. It signs no CA below
// it (path length zero).
func NewServingCA(now time.Time, validity time.Duration, commonName string, dnsNames []string, ips []net.IP) (*CA, error) {
	template := &x509.Certificate{
		Subject:                     pkix.Name{CommonName: commonName},
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         dnsNames,
	}
	for _, ip := range ips {
		template.PermittedIPRanges = append(template.PermittedIPRanges, hostRange(ip))
	}
	if len(ips) == 0 {
		template.ExcludedIPRanges = []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		}
	}
	return newCA(now, validity, template)
}

// hostRange is the range of ip alone.
func hostRange(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip.To16(), Mask: net.CIDRMask(128, 128)}
}

// newCA self-signs template (its subject and constraints) as a CA.
func newCA(now time.Time, validity time.Duration, template *x509.Certificate) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	if template.SerialNumber, err = serialNumber(); err != nil {
		return nil, err
	}
	template.NotBefore, template.NotAfter = now.Add(-clockSkew), now.Add(validity)
	template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	template.BasicConstraintsValid, template.IsCA = true, true
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

// ParseCA loads a CA that NewCA or NewServingCA made, from its certificate
// and key in PEM (CA.PEM and CA.KeyPEM).
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("the certificate %s is not a CA", cert.Subject.CommonName)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("parsing the CA key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the CA key is not the key of the certificate %s", cert.Subject.CommonName)
	}
	return &CA{cert: cert, key: key, PEM: pemCert(cert.Raw)}, nil
}

// Certificate is the CA's parsed certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// KeyPEM is the CA's private key in PEM, for ParseCA.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("encoding the CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// SignServing signs a serving certificate for dnsNames and ips (the first
// DNS name is its common name), valid for validity but never beyond the CA.
func (ca *CA) SignServing(now time.Time, validity time.Duration, dnsNames []string, ips []net.IP) (Issued, error) {
	if len(dnsNames) == 0 {
		return Issued{}, errors.New("a serving certificate needs a DNS name")
	}
	return ca.sign(now, validity, &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames, IPAddresses: ips,
	})
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
	template.NotBefore, template.NotAfter = now.Add(-clockSkew), now.Add(validity)
	if template.NotAfter.After(ca.cert.NotAfter) {
		template.NotAfter = ca.cert.NotAfter // a certificate never outlives its CA
	}
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

// clockSkew backdates every certificate, so that a client whose clock is a
// little behind takes it at once.
const clockSkew = 5 * time.Minute

// serialNumber is a random 126-bit serial number, as RFC 5280 wants them
// unique per CA.
func serialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return serial, nil
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
