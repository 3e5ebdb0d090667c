package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// client is one subscriber. received and gone belong to the tally's mutex.
type client struct {
	conn     *websocket.Conn
	rotary   bool
	t        *tally
	received int64
	gone     bool
	buf      bytes.Buffer
	stamps   []int64
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
// timeout, then starts the client's read loop.
func open(url, token string, j *job, t *tally, gate chan struct{}, timeout time.Duration) (*client, error) {
	gate <- struct{}{}
	conn, _, err := dialer.Dial(url, nil)
	<-gate
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{conn: conn, rotary: j.Dialect == "rotary", t: t}
	if c.rotary {
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		if err := c.handshake(token, j.Channel); err != nil {
			_ = conn.Close()
			return nil, err
		}
		_ = conn.SetReadDeadline(time.Time{})
	}
	go c.loop()
	return c, nil
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

// loop counts deliveries until the connection ends: every "pub": (rotary) or every text
// message (bare), with the stamp of each timed one.
func (c *client) loop() {
	for {
		data, err := c.next()
		if err != nil {
			c.t.mu.Lock()
			c.gone = true
			c.t.mu.Unlock()
			return
		}
		now := monotonicNs()
		n := int64(1)
		if c.rotary {
			n = int64(bytes.Count(data, pubMark))
			if bytes.Contains(data, ping) && c.answerPing(data) != nil {
				continue
			}
			if n == 0 {
				continue
			}
		}
		c.t.add(c, n, c.readStamps(data), now)
	}
}

// answerPing answers the server's ping (an empty object on a line of its own).
func (c *client) answerPing(data []byte) error {
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if bytes.Equal(line, ping) {
			return c.conn.WriteMessage(websocket.TextMessage, ping)
		}
	}
	return nil
}

// readStamps collects the send time of every "t_ns": in data (digits up to the next '}').
func (c *client) readStamps(data []byte) []int64 {
	c.stamps = c.stamps[:0]
	for {
		at := bytes.Index(data, stampMark)
		if at < 0 {
			return c.stamps
		}
		data = data[at+len(stampMark):]
		var ns int64
		k := 0
		for ; k < len(data) && data[k] >= '0' && data[k] <= '9'; k++ {
			ns = ns*10 + int64(data[k]-'0')
		}
		if k > 0 {
			c.stamps = append(c.stamps, ns)
		}
		data = data[k:]
	}
}

func (c *client) close() {
	deadline := time.Now().Add(5 * time.Second)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, deadline); err != nil &&
		!errors.Is(err, websocket.ErrCloseSent) {
		_ = c.conn.Close()
		return
	}
	// Give the server a moment to answer the close before the socket goes.
	time.Sleep(10 * time.Millisecond)
	_ = c.conn.Close()
}
