// Package webhookserver hardens controller-runtime's webhook server, which
// serves the admission webhooks and the authorizer: TLS 1.2 or newer, a
// read and write deadline on every request, so that a slow or stalled client
// cannot hold a connection and a goroutine open (controller-runtime sets
// only a header timeout; request bodies are bounded by the handlers), and a
// guard in front of every handler that lets only authenticated callers in
// (internal/webhookauth).
package webhookserver

import (
	"crypto/tls"
	"net/http"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// DefaultRequestTimeout bounds reading a request and writing its answer. The
// kube-apiserver gives a webhook 10 seconds by default (3 for the authorizer
// as config/authorization sets it).
const DefaultRequestTimeout = 10 * time.Second

// Guard wraps the handler registered for path, so that it runs only for the
// callers the guard lets in.
type Guard func(path string, h http.Handler) http.Handler

// New returns a webhook server with the hardening applied. Each guard wraps
// every handler registered, the first one outermost; the operator passes
// one, the callers' authentication.
func New(opts webhook.Options, requestTimeout time.Duration, guards ...Guard) webhook.Server {
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) {
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
	})
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	return &server{Server: webhook.NewServer(opts), timeout: requestTimeout, guards: guards}
}

type server struct {
	webhook.Server
	timeout time.Duration
	guards  []Guard
}

// Register wraps every handler with the guards and the request deadlines.
// Every path is registered here (controller-runtime's webhook builder too),
// so no handler is reachable unguarded.
func (s *server) Register(path string, h http.Handler) {
	for _, guard := range slices.Backward(s.guards) {
		h = guard(path, h)
	}
	s.Server.Register(path, WithDeadlines(h, s.timeout))
}

// WithDeadlines sets the connection's read and write deadlines for the
// request before the handler runs.
func WithDeadlines(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(d)
		// Not every ResponseWriter supports deadlines (a test recorder does
		// not); the request is served either way.
		_ = rc.SetReadDeadline(deadline)
		_ = rc.SetWriteDeadline(deadline)
		h.ServeHTTP(w, r)
	})
}
