package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// client is one subscriber: opened and handshaken through gorilla/websocket on its
// connection, then read by the epoll loop (loop.go) from fd.
type client struct {
	conn     *websocket.Conn
	fd       int
	rotary   bool
	received int64
	gone     bool
	buf      bytes.Buffer
	stamps   []int64
	// Bytes of a frame not yet whole, and the payload of a fragmented message so far.
	partial []byte
	message []byte
}

var (
	pubMark   = []byte(`"pub":`)
	stampMark = []byte(`"t_ns":`)
	ping      = []byte(`{}`)
)

var dialer = websocket.Dialer{
	HandshakeTimeout: 30 * time.Second,
	ReadBufferSize:   16 << 10,
	WriteBufferSize:  4 << 10,
}

// open dials url (holding a place in gate meanwhile), runs the dialect's handshake within
// timeout, then detaches the socket for the epoll loop.
func open(url, token string, j *job, gate chan struct{}, timeout time.Duration) (*client, error) {
	gate <- struct{}{}
	conn, _, err := dialer.Dial(url, nil)
	<-gate
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{conn: conn, rotary: j.Dialect == "rotary"}
	if c.rotary {
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		if err := c.handshake(token, j.Channel); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	if err := c.detach(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// detach takes the socket out of Go's poller for the epoll loop: a blocking read per
// connection (any WebSocket library's way) costs a second read() per message, the one
// that finds the socket empty before the goroutine parks; with the scheduler's thread
// wake-ups that made the kernel time per message half as large again. The server sends
// nothing between the handshake's last reply and the first timed publication but pings
// (the first one a ping interval after the connect), so gorilla holds no unread bytes.
func (c *client) detach() error {
	raw, err := c.conn.NetConn().(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var dupErr error
	if err := raw.Control(func(fd uintptr) { c.fd, dupErr = unix.Dup(int(fd)) }); err != nil {
		return err
	}
	if dupErr != nil {
		return fmt.Errorf("dup: %w", dupErr)
	}
	// Closing Go's descriptor takes it out of Go's poller; the socket stays open on c.fd.
	_ = c.conn.NetConn().Close()
	c.conn = nil
	return unix.SetNonblock(c.fd, true)
}

// handshake sends connect (id 1), then on its reply subscribe (id 2); done at the
// subscribe reply. Pings meanwhile are answered.
func (c *client) handshake(token, channel string) error {
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": token}})
	if err := c.conn.WriteMessage(websocket.TextMessage, connect); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	for {
		data, err := c.next()
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			subscribed, err := c.reply(line, channel)
			if err != nil || subscribed {
				return err
			}
		}
	}
}

// reply handles one message of the handshake: true once subscribed.
func (c *client) reply(line []byte, channel string) (bool, error) {
	var msg struct {
		ID    int             `json:"id"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return false, fmt.Errorf("reply %q: %w", line, err)
	}
	switch {
	case msg.Error != nil:
		return false, fmt.Errorf("error reply %s", msg.Error)
	case bytes.Equal(line, ping):
		return false, c.conn.WriteMessage(websocket.TextMessage, ping)
	case msg.ID == 1:
		sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": channel}})
		return false, c.conn.WriteMessage(websocket.TextMessage, sub)
	}
	return msg.ID == 2, nil
}

// next reads one whole message into the client's buffer (valid until the next call).
func (c *client) next() ([]byte, error) {
	_, r, err := c.conn.NextReader()
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}
