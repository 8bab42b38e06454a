package testenv

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves lines back on a loopback port until the test ends.
func echo(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// A paused proxy holds the bytes of open and new connections without
// closing them, and delivers them once resumed.
func TestProxyPausesWithoutClosing(t *testing.T) {
	p := StartProxy(t, echo(t))
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	roundTrip := func(c net.Conn, r *bufio.Reader, line string, wait time.Duration) (string, error) {
		if _, err := c.Write([]byte(line)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		return r.ReadString('\n')
	}

	open, openR := dial()
	if got, err := roundTrip(open, openR, "one\n", 10*time.Second); err != nil || got != "one\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	p.Pause()
	if got, err := roundTrip(open, openR, "two\n", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an open connection while paused: %q, %v, want nothing and no error", got, err)
	}
	later, laterR := dial() // accepted, never answered
	if got, err := roundTrip(later, laterR, "three\n", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new connection while paused: %q, %v, want nothing and no error", got, err)
	}

	p.Resume()
	_ = open.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := openR.ReadString('\n'); err != nil || got != "two\n" {
		t.Errorf("the open connection after Resume: %q, %v, want the line held", got, err)
	}
	_ = later.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := laterR.ReadString('\n'); err != nil || got != "three\n" {
		t.Errorf("the new connection after Resume: %q, %v, want the line held", got, err)
	}
}
