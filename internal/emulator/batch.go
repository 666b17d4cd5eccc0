package emulator

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// maxBatchBytes bounds what a batching connection buffers before it writes anyway.
const maxBatchBytes = 64 << 10

// batchConn lets a connection's writer coalesce several WebSocket frames into one write system call:
// between begin and end, writes are buffered. Outside a batch (and for frames written by other goroutines,
// such as pongs and close frames) writes go straight through.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      []byte
	err      error // first error of a buffered write, returned by end
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= maxBatchBytes {
		b.flushLocked()
	}
	return len(p), nil
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// end writes what the batch buffered and reports the first write error of the batch.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.batching = false
	err := b.err
	b.err = nil
	return err
}

func (b *batchConn) flushLocked() {
	if len(b.buf) == 0 || b.err != nil {
		b.buf = b.buf[:0]
		return
	}
	if _, err := b.Conn.Write(b.buf); err != nil {
		b.err = fmt.Errorf("batched write: %w", err)
	}
	if cap(b.buf) > 4*maxBatchBytes {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
}

// batchingResponseWriter hands websocket.Accept a hijacked connection wrapped in a batchConn.
type batchingResponseWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (w *batchingResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("flush upgrade response: %w", err)
	}
	w.conn = &batchConn{Conn: nc}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 4096)), nil
}
