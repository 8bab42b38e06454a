package testenv

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from a loopback port to a backend (an
// apiserver), and can go silent: Pause stops forwarding bytes on every
// connection, both ways, without closing any, and leaves new connections
// unanswered; Resume lets everything through again. A paused proxy is a
// connection that died silently (a dropped NAT entry, a partitioned node):
// no read or write fails, so a watch through it simply stops delivering,
// which is what a closed connection, noticed and redialled, never shows.
type Proxy struct {
	backend  string
	listener net.Listener

	mu    sync.Mutex
	flow  chan struct{} // closed while bytes may flow
	conns map[net.Conn]struct{}
}

// StartProxy listens on a free loopback port and forwards to backend
// (host:port) until the test ends.
func StartProxy(tb testing.TB, backend string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{backend: backend, listener: l, flow: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.flow)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

// Pause stops every byte, on connections open and to come.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
		p.flow = make(chan struct{})
	default: // paused already
	}
}

// Resume lets the bytes held since Pause, and every later one, through.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
	default:
		close(p.flow)
	}
}

// flowing returns a channel that is closed while the proxy forwards.
func (p *Proxy) flowing() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flow
}

func (p *Proxy) accept() {
	for {
		in, err := p.listener.Accept()
		if err != nil {
			return
		}
		go p.serve(in)
	}
}

// serve dials the backend only once bytes may flow, so that a connection
// opened while paused hangs like the ones already open.
func (p *Proxy) serve(in net.Conn) {
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	<-p.flowing()
	out, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	go func() { p.copy(out, in); done <- struct{}{} }()
	go func() { p.copy(in, out); done <- struct{}{} }()
	<-done // one side closed: close both, as a plain proxy would
}

// copy forwards src to dst, holding what it read while paused.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.flowing()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: serve closes both
		}
	}
}

// track records an open connection, or closes it when the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// close stops listening, lets held goroutines go and closes every
// connection.
func (p *Proxy) close() {
	_ = p.listener.Close()
	p.Resume()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
