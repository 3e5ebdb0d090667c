// Command gosdk drives the official Go SDK (github.com/centrifugal/centrifuge-go) for the Python
// tests (tests/sdk/go_driver.py), the way tests/sdk/js/driver.mjs drives centrifuge-js.
//
// Protocol with the parent process, one JSON object per line:
//
//	stdin  (commands): {"op": "connect" | "subscribe" | "unsubscribe" | "presence" | "history" |
//	                    "publish" | "disconnect" | "token" | "exit", ...}; connect takes
//	                    "protocol": "protobuf" for the SDK's Protobuf client, JSON otherwise.
//	stdout (events):   {"ev": "...", ...}, the shapes of tests/sdk/harness.py, plus
//	                    {"ev": "wire", "subprotocol", "opcode"} (the handshake's subprotocol and
//	                    the WebSocket opcode of the server's first frame, read off the socket),
//	                    {"ev": "trace", "dir": "in" | "out", "message"} (the SDK's own trace of
//	                    every command, reply and push), {"ev": "join" | "leave", ...} and
//	                    {"ev": "reply", "req", "result" | "error"} for presence, history and
//	                    publish.
//
// Tokens are never made here: a GetToken callback emits {"ev": "token_request", "seq", ...} and
// blocks until {"op": "token", "seq", "token" | "error"} arrives, so the parent signs each
// token at the moment the SDK asks for it.
//
// The process bounds itself: it exits with status 3 after argv[1] milliseconds (default 30000),
// and with status 0 when stdin closes.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// command is one line from the parent; each op reads the fields it needs.
type command struct {
	Op                  string          `json:"op"`
	Req                 int             `json:"req"`
	Seq                 int             `json:"seq"`
	URL                 string          `json:"url"`
	Protocol            string          `json:"protocol"`
	Token               string          `json:"token"`
	Error               string          `json:"error"`
	UseGetToken         bool            `json:"use_get_token"`
	Channel             string          `json:"channel"`
	Data                json.RawMessage `json:"data"`
	Limit               int32           `json:"limit"`
	Recoverable         bool            `json:"recoverable"`
	JoinLeave           bool            `json:"join_leave"`
	MinReconnectDelayMs int             `json:"min_reconnect_delay_ms"`
}

// event is one line to the parent.
type event map[string]any

var stdoutMu sync.Mutex

// emit writes one event line; the SDK calls handlers from its own goroutines.
func emit(e event) {
	line, err := json.Marshal(e)
	if err != nil {
		line, _ = json.Marshal(event{"ev": "driver_error", "message": err.Error()})
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

func main() {
	limit := 30000
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil {
			limit = n
		}
	}
	time.AfterFunc(time.Duration(limit)*time.Millisecond, func() {
		emit(event{"ev": "fatal", "reason": fmt.Sprintf("driver hard timeout after %d ms", limit)})
		os.Exit(3)
	})
	d := newDriver()
	ops := make(chan command, 64)
	done := make(chan struct{})
	// Commands run in order on one goroutine; token answers bypass it, because the SDK may
	// call GetToken from inside Connect or Subscribe and wait there for the answer.
	go func() {
		defer close(done)
		for cmd := range ops {
			d.handle(cmd)
		}
		d.close()
	}()
	emit(event{"ev": "ready"})
	readCommands(d, ops)
	close(ops)
	<-done
}

// readCommands reads stdin until it closes or an "exit" command arrives.
func readCommands(d *driver, ops chan<- command) {
	scanner := bufio.NewScanner(os.Stdin)
	// A token line can be long (claims with info); the default 64 KiB is kept as the floor.
	scanner.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for scanner.Scan() {
		var cmd command
		if err := json.Unmarshal(scanner.Bytes(), &cmd); err != nil {
			emit(event{"ev": "driver_error", "message": "bad command: " + err.Error()})
			continue
		}
		switch cmd.Op {
		case "exit":
			return
		case "token":
			d.tokens.answer(cmd)
		default:
			ops <- cmd
		}
	}
}
