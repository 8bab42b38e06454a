package webhookserver

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// A client that sends its headers and then stalls the body is cut off at the
// deadline instead of holding the connection.
func TestStalledBodyIsCutOff(t *testing.T) {
	read := make(chan error, 1)
	srv := httptest.NewServer(WithDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		read <- err
	}), 200*time.Millisecond))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := fmt.Fprintf(conn, "POST /authorize HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\":"); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-read:
		if err == nil {
			t.Fatal("the handler read a body that never arrived")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled request was not cut off")
	}
}

func TestRegisterWrapsHandlers(t *testing.T) {
	s := New(webhookOptions(), time.Second).(*server)
	if s.timeout != time.Second {
		t.Errorf("timeout = %s", s.timeout)
	}
	called := false
	s.Register("/x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	w := httptest.NewRecorder()
	s.WebhookMux().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/x", nil))
	if !called {
		t.Error("the registered handler was not served")
	}
}

func webhookOptions() webhook.Options { return webhook.Options{Port: 0} }
