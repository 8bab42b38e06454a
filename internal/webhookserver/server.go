// Package webhookserver hardens controller-runtime's webhook server, which
// serves the admission webhooks and the authorizer: TLS 1.2 or newer, and a
// read and write deadline on every request, so that a slow or stalled client
// cannot hold a connection and a goroutine open. (controller-runtime sets
// only a header timeout; request bodies are bounded by the handlers.)
package webhookserver

import (
	"crypto/tls"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// DefaultRequestTimeout bounds reading a request and writing its answer. The
// kube-apiserver gives a webhook 10 seconds by default (3 for the authorizer
// as config/authorization sets it).
const DefaultRequestTimeout = 10 * time.Second

// New returns a webhook server with the hardening applied.
func New(opts webhook.Options, requestTimeout time.Duration) webhook.Server {
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) {
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
	})
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	return &server{Server: webhook.NewServer(opts), timeout: requestTimeout}
}

type server struct {
	webhook.Server
	timeout time.Duration
}

// Register wraps every handler with the request deadlines.
func (s *server) Register(path string, h http.Handler) {
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
