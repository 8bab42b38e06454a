package webhookauth

import "net/http"

// Endpoint is what a caller asks to reach.
type Endpoint int

const (
	// Admission is an admission webhook: only the kube-apiserver calls it.
	Admission Endpoint = iota
	// Decisions is POST /authorize: the kube-apiserver, and any caller whose
	// bearer token RBAC allows to create subjectaccessreviews.partners.roompro.io.
	Decisions
)

func (e Endpoint) String() string {
	if e == Decisions {
		return "decisions"
	}
	return "admission"
}

// certificate is what a request's client certificate proved.
type certificate int

const (
	// noCertificate: none, or none that the client CA verifies now.
	noCertificate certificate = iota
	// apiserverCertificate: the client CA's, with an allowed common name.
	apiserverCertificate
	// otherCertificate: the client CA's, with another name. A cluster CA
	// signs the kubelets' and users' certificates too; none of them is the
	// kube-apiserver.
	otherCertificate
)

// token is what a request's bearer token proved.
type token int

const (
	noToken token = iota
	// tokenRejected: the TokenReview did not accept it.
	tokenRejected
	// tokenNotAllowed: accepted, but RBAC does not let its user ask.
	tokenNotAllowed
	// tokenAllowed: accepted, and RBAC lets its user ask.
	tokenAllowed
	// tokenUnchecked: accepted, but the SubjectAccessReview failed.
	tokenUnchecked
)

// verdict is what the guard does with a request.
type verdict int

const (
	pass verdict = iota
	// askToken: the certificate did not let the caller in; its token may.
	askToken
	unauthenticated
	forbidden
	// unavailable: the caller could not be checked (the apiserver did not
	// answer the SubjectAccessReview); nothing is decided.
	unavailable
)

// status is the HTTP status of a refusal.
func (v verdict) status() int {
	switch v {
	case unauthenticated:
		return http.StatusUnauthorized
	case forbidden:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

func (v verdict) String() string {
	return [...]string{"pass", "askToken", "unauthenticated", "forbidden", "unavailable"}[v]
}

// byCertificate judges a request by its client certificate alone. The
// kube-apiserver's certificate reaches every endpoint. Decisions may still
// be reached with a token. Admission is open to anyone only when the
// operator was started with --insecure-allow-unauthenticated-admission-callers.
func byCertificate(e Endpoint, c certificate, insecureAdmission bool) verdict {
	switch {
	case c == apiserverCertificate:
		return pass
	case e == Decisions:
		return askToken
	case insecureAdmission:
		return pass
	case c == otherCertificate:
		return forbidden
	default:
		return unauthenticated
	}
}

// byToken judges a request for decisions that its certificate did not let
// in, by its bearer token. A certificate of the client CA with another name
// authenticates the caller, so without a token it is forbidden, not
// unauthenticated.
func byToken(c certificate, t token) verdict {
	switch t {
	case tokenAllowed:
		return pass
	case tokenNotAllowed:
		return forbidden
	case tokenUnchecked:
		return unavailable
	case tokenRejected:
		return unauthenticated
	}
	if c == otherCertificate {
		return forbidden
	}
	return unauthenticated
}
