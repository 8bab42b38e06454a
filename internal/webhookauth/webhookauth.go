// Package webhookauth authenticates the callers of the webhook server before
// any handler runs: the kube-apiserver by its client certificate (a CA the
// operator is given, and an allowed common name, as the apiserver's
// --requestheader-allowed-names), and other callers of POST /authorize (a
// portal backend) by a bearer token that a TokenReview accepts and that RBAC
// allows to create the virtual resource
// subjectaccessreviews.partners.roompro.io. Anyone else gets 401 or 403 and
// reaches no handler: no decision is made, counted or logged, and nothing is
// admitted.
//
// The verdicts are pure functions (policy.go); this file does the I/O: the
// certificate check, the TokenReview and the SubjectAccessReview, both
// through k8s.io/apiserver's delegating authenticator and authorizer, which
// cache their answers briefly.
package webhookauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
)

// The operator asks the apiserver about token callers.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// DefaultAllowedName is the common name of the kube-apiserver's client
// certificate that the webhook server accepts by default: the one that
// docs/authorization-webhook.md has an admin issue, and that the local
// control plane (internal/controlplane) presents.
const DefaultAllowedName = "partner-operator-webhook-client"

// The virtual resource a token caller needs create on (ClusterRole
// partner-decision-client, config/customer-roles).
const (
	DecisionGroup    = "partners.roompro.io"
	DecisionResource = "subjectaccessreviews"
)

// Cache lifetimes of the token callers' answers. Short: a revoked token or
// binding stops working within seconds, and a portal backend asking many
// reviews a second costs one TokenReview and one SubjectAccessReview per
// period. Both caches are bounded: the token cache holds an entry per
// token the apiserver answered for, for CacheTTL (a token it rejects with
// a reason, as it does malformed and forged ones, is not kept); the
// authorizer's is an LRU of 8,192 answers.
const (
	TokenCacheTTL = 10 * time.Second
	AllowCacheTTL = 10 * time.Second
	DenyCacheTTL  = 10 * time.Second
)

// reviewTimeout bounds one TokenReview; with the retries below a token
// caller is answered well within the webhook server's request deadline.
const reviewTimeout = 3 * time.Second

// retryBackoff retries a TokenReview or SubjectAccessReview that failed on
// the way (not one that was answered): three tries, about a second apart.
var retryBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}

// Options say how the webhook server authenticates its callers.
type Options struct {
	// ClientCAFile is a PEM bundle of the CAs that sign the
	// kube-apiserver's client certificate. It is read again when it
	// changes: a CA added or removed applies to the next request, without
	// a restart.
	ClientCAFile string
	// AllowedNames are the common names a client certificate of those CAs
	// must have to be taken for the kube-apiserver. Default:
	// DefaultAllowedName.
	AllowedNames []string
	// InsecureAllowUnauthenticatedAdmission lets every caller reach the
	// admission webhooks, with or without a certificate: for clusters whose
	// apiserver cannot be given a client certificate. POST /authorize still
	// answers only the certificate and allowed tokens.
	InsecureAllowUnauthenticatedAdmission bool
}

// ErrNoCallerAuthentication is returned by New when Options name no way to
// authenticate the kube-apiserver and do not opt out of it either.
var ErrNoCallerAuthentication = errors.New("the webhook server authenticates the kube-apiserver by its client certificate: " +
	"set --webhook-client-ca-file to the CA that signs it (docs/authorization-webhook.md), or, where the apiserver " +
	"cannot be given one, --insecure-allow-unauthenticated-admission-callers to let any caller reach the admission webhooks")

// Validate refuses options that name no way to authenticate the
// kube-apiserver: the webhook server would answer anyone, or no one.
func (o Options) Validate() error {
	if o.ClientCAFile == "" && !o.InsecureAllowUnauthenticatedAdmission {
		return ErrNoCallerAuthentication
	}
	return nil
}

// Guard authenticates and authorises the callers of the webhook server.
type Guard struct {
	ca *dynamiccertificates.DynamicFileCAContent // nil without a client CA
	// certs authenticates the client certificate: CA and key usage only;
	// the name is judged against allowed.
	certs    authenticator.Request
	verified verifiedCerts
	allowed  []string
	// tokens and decide authenticate and authorise bearer tokens. They are
	// kept apart from certs, so that a token user named like the
	// apiserver's certificate is still a token user.
	tokens            authenticator.Request
	decide            authorizer.Authorizer
	insecureAdmission bool
	log               logr.Logger
}

// New returns the guard for opts, asking the apiserver of cfg about tokens.
// It reads the client CA file now: a missing or malformed one is an error
// at start-up, not a refused apiserver later.
func New(cfg *rest.Config, opts Options) (*Guard, error) {
	log := ctrl.Log.WithName("webhook-callers")
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{allowed: opts.AllowedNames, insecureAdmission: opts.InsecureAllowUnauthenticatedAdmission, log: log}
	if len(g.allowed) == 0 {
		g.allowed = []string{DefaultAllowedName}
	}
	if opts.ClientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("webhook-client-ca", opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the webhook client CA (--webhook-client-ca-file=%s): %w", opts.ClientCAFile, err)
		}
		ca.AddListener(reloaded{log: log, file: opts.ClientCAFile})
		certs, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{ClientCertificateCAContentProvider: ca}.New()
		if err != nil {
			return nil, fmt.Errorf("creating the client certificate authenticator: %w", err)
		}
		g.ca, g.certs = ca, certs
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a clientset for token callers: %w", err)
	}
	if g.tokens, _, err = (authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		TokenAccessReviewClient:  cs.AuthenticationV1(),
		TokenAccessReviewTimeout: reviewTimeout,
		WebhookRetryBackoff:      &retryBackoff,
		CacheTTL:                 TokenCacheTTL,
	}).New(); err != nil {
		return nil, fmt.Errorf("creating the token authenticator: %w", err)
	}
	if g.decide, err = (authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: cs.AuthorizationV1(),
		AllowCacheTTL:             AllowCacheTTL,
		DenyCacheTTL:              DenyCacheTTL,
		WebhookRetryBackoff:       &retryBackoff,
	}).New(); err != nil {
		return nil, fmt.Errorf("creating the token authorizer: %w", err)
	}

	if g.insecureAdmission {
		log.Info("WARNING: --insecure-allow-unauthenticated-admission-callers is set: any caller that reaches the " +
			"webhook port may send admission reviews with any user it likes; keep the port behind a NetworkPolicy " +
			"(config/network-policy) and give the apiserver a client certificate as soon as you can")
	}
	if g.ca == nil {
		log.Info("no webhook client CA: POST /authorize answers only bearer tokens allowed to create " +
			DecisionResource + "." + DecisionGroup + ", so the kube-apiserver's authorization webhook needs one too")
	} else {
		log.Info("the webhook server accepts the kube-apiserver by its client certificate",
			"clientCAFile", opts.ClientCAFile, "allowedNames", g.allowed)
	}
	return g, nil
}

// reloaded logs a change of the client CA file.
type reloaded struct {
	log  logr.Logger
	file string
}

func (r reloaded) Enqueue() { r.log.Info("loaded the webhook client CA", "file", r.file) }

// Start watches the client CA file until ctx ends, so that a rotated CA
// applies without a restart.
func (g *Guard) Start(ctx context.Context) error {
	if g.ca != nil {
		g.ca.Run(ctx, 1)
	}
	return nil
}

// NeedLeaderElection is false: every replica serves the webhooks.
func (g *Guard) NeedLeaderElection() bool { return false }

// ConfigureTLS asks clients for a certificate of the client CA, verifying
// it when one is given (tls.VerifyClientCertIfGiven): a certificate of
// another CA fails the handshake; a caller without one (a token caller, or
// the webhook server's own readiness probe) still connects. Each handshake
// takes the CA file's current content. c must be the configuration the
// server serves (controller-runtime's webhook server passes it to its
// TLSOpts and then sets its certificate on it): each handshake uses a copy
// of c with the client CAs of the moment.
func (g *Guard) ConfigureTLS(c *tls.Config) {
	if g.ca == nil {
		return
	}
	base := c
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		opts, ok := g.ca.VerifyOptions()
		if !ok {
			return nil, errors.New("the webhook client CA is not loaded")
		}
		conn := base.Clone()
		conn.GetConfigForClient = nil
		conn.ClientAuth = tls.VerifyClientCertIfGiven
		conn.ClientCAs = opts.Roots
		return conn, nil
	}
}

// Wrap lets only the callers that may reach e through to h.
func (g *Guard) Wrap(e Endpoint, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cert, name := g.certificate(r)
		v := byCertificate(e, cert, g.insecureAdmission)
		if v == askToken {
			var t token
			t, name = g.token(r, name)
			v = byToken(cert, t)
		}
		if v == pass {
			h.ServeHTTP(w, r)
			return
		}
		g.log.V(1).Info("refused a webhook caller", "endpoint", e.String(), "path", r.URL.Path,
			"remote", r.RemoteAddr, "caller", name, "verdict", v.String())
		http.Error(w, refusal(e, v), v.status())
	})
}

// certificate judges the request's client certificate against the client
// CA as it is now (a connection verified under a CA since removed no longer
// counts), and returns its common name.
func (g *Guard) certificate(r *http.Request) (certificate, string) {
	if g.certs == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return noCertificate, ""
	}
	leaf, now := r.TLS.PeerCertificates[0], time.Now()
	var bundle []byte
	if g.ca != nil { // nil only in the package's tests
		bundle = g.ca.CurrentCABundleContent()
	}
	name, ok := g.verified.get(bundle, leaf.Raw, now)
	if !ok {
		resp, authenticated, err := g.certs.AuthenticateRequest(r)
		if err != nil || !authenticated {
			return noCertificate, ""
		}
		name = resp.User.GetName()
		g.verified.put(bundle, leaf.Raw, name, now, leaf.NotAfter)
	}
	if slices.Contains(g.allowed, name) {
		return apiserverCertificate, name
	}
	return otherCertificate, name
}

// token authenticates the request's bearer token and asks whether its user
// may create subjectaccessreviews.partners.roompro.io. It returns the
// caller's name for the log: the token's user, else the certificate's.
func (g *Guard) token(r *http.Request, certName string) (token, string) {
	resp, ok, err := g.tokens.AuthenticateRequest(r)
	if !ok {
		if err != nil {
			// Also a token the apiserver refused: the TokenReview says why.
			g.log.V(1).Info("a bearer token was not accepted", "remote", r.RemoteAddr, "reason", err.Error())
			return tokenRejected, certName
		}
		return noToken, certName
	}
	user := resp.User.GetName()
	decision, _, err := g.decide.Authorize(r.Context(), authorizer.AttributesRecord{
		User: resp.User, Verb: "create", APIGroup: DecisionGroup, Resource: DecisionResource, ResourceRequest: true,
	})
	switch {
	case decision == authorizer.DecisionAllow:
		return tokenAllowed, user
	case err != nil:
		g.log.Error(err, "checking whether a token caller may ask for decisions", "user", user)
		return tokenUnchecked, user
	default:
		return tokenNotAllowed, user
	}
}

// refusal is the body of a refusal: what the endpoint accepts, nothing of
// what the caller sent.
func refusal(e Endpoint, v verdict) string {
	switch {
	case v == unavailable:
		return "the caller's permission could not be checked; try again"
	case e == Admission && v == forbidden:
		return "the client certificate is not the kube-apiserver's: its name is not among the allowed names"
	case e == Admission:
		return "the admission webhooks answer only the kube-apiserver, by its client certificate"
	case v == forbidden:
		return "the caller may not ask for decisions: it needs create on " + DecisionResource + "." + DecisionGroup +
			" (ClusterRole partner-decision-client)"
	default:
		return "decisions are answered to the kube-apiserver, by its client certificate, and to bearer tokens " +
			"allowed to create " + DecisionResource + "." + DecisionGroup
	}
}
