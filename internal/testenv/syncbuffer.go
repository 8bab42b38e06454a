package testenv

import (
	"bytes"
	"sync"
)

// SyncBuffer is an io.Writer that managers under test (and their
// controllers' goroutines) write to at once, such as their audit log; String
// reads what they wrote so far.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
