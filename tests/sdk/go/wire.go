package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"

	"github.com/centrifugal/centrifuge-go"
)

// tapLimit caps how much of a connection's start the tap keeps: the handshake response and the
// first frame header fit easily.
const tapLimit = 64 * 1024

// tappedDial dials as the SDK would and watches the start of what the server sends, so a test
// can check the protocol from the bytes on the socket rather than from the SDK's word.
func tappedDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &tappedConn{Conn: conn}, nil
}

// tappedConn emits one "wire" event per connection: the subprotocol the server chose and the
// opcode of its first WebSocket frame (1 text, 2 binary).
type tappedConn struct {
	net.Conn
	mu   sync.Mutex
	seen []byte
	done bool
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.observe(p[:n])
	}
	return n, err
}

func (c *tappedConn) observe(chunk []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.seen = append(c.seen, chunk...)
	end := bytes.Index(c.seen, []byte("\r\n\r\n"))
	if end < 0 || len(c.seen) <= end+4 {
		c.done = len(c.seen) >= tapLimit
		return
	}
	c.done = true
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(c.seen[:end+4])), nil)
	subprotocol := ""
	if err == nil {
		subprotocol = resp.Header.Get("Sec-WebSocket-Protocol")
	}
	emit(event{"ev": "wire", "subprotocol": subprotocol, "opcode": c.seen[end+4] & 0x0f})
	c.seen = nil
}

// traceEvent turns the SDK's trace log of each command, reply and push into a "trace" event.
func traceEvent(entry centrifuge.LogEntry) {
	if entry.Level != centrifuge.LogLevelTrace {
		return
	}
	for kind, dir := range map[string]string{"command": "out", "reply": "in", "push": "in"} {
		if text, ok := entry.Fields[kind]; ok {
			emit(event{"ev": "trace", "dir": dir, "kind": kind, "message": json.RawMessage(text)})
		}
	}
}
