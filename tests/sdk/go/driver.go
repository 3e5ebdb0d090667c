package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

// callTimeout bounds presence, history and publish calls: a reply that never comes becomes an
// error event the test can show, instead of a silent hang.
const callTimeout = 10 * time.Second

// driver owns one SDK client and its subscriptions; commands run on the stdin goroutine,
// SDK callbacks on the SDK's goroutines.
type driver struct {
	client *centrifuge.Client
	subs   map[string]*centrifuge.Subscription
	tokens *tokenBroker
}

func newDriver() *driver {
	return &driver{subs: map[string]*centrifuge.Subscription{}, tokens: newTokenBroker()}
}

func (d *driver) handle(cmd command) {
	switch cmd.Op {
	case "connect":
		d.connect(cmd)
	case "subscribe":
		d.subscribe(cmd)
	case "unsubscribe":
		if sub, ok := d.subs[cmd.Channel]; ok {
			_ = sub.Unsubscribe()
		}
	case "presence", "history", "publish":
		// The map is read here, on the command goroutine that writes it; the call runs on its
		// own goroutine so that later commands need not wait for its reply.
		go call(cmd, d.subs[cmd.Channel])
	case "disconnect":
		if d.client != nil {
			_ = d.client.Disconnect()
		}
	default:
		emit(event{"ev": "driver_error", "message": "unknown op " + cmd.Op})
	}
}

func (d *driver) close() {
	if d.client != nil {
		d.client.Close()
	}
}

func (d *driver) connect(cmd command) {
	config := centrifuge.Config{
		Token:             cmd.Token,
		MinReconnectDelay: time.Duration(cmd.MinReconnectDelayMs) * time.Millisecond,
		NetDialContext:    tappedDial,
		LogLevel:          centrifuge.LogLevelTrace,
		LogHandler:        traceEvent,
	}
	if cmd.UseGetToken {
		config.GetToken = func(centrifuge.ConnectionTokenEvent) (string, error) {
			return d.tokens.ask("connection", "")
		}
	}
	if cmd.Protocol == "protobuf" {
		d.client = centrifuge.NewProtobufClient(cmd.URL, config)
	} else {
		d.client = centrifuge.NewJsonClient(cmd.URL, config)
	}
	onClientEvents(d.client)
	if err := d.client.Connect(); err != nil {
		emit(event{"ev": "error", "code": 0, "message": err.Error()})
	}
}

func onClientEvents(c *centrifuge.Client) {
	c.OnConnecting(func(e centrifuge.ConnectingEvent) {
		emit(event{"ev": "connecting", "code": e.Code, "reason": e.Reason})
	})
	c.OnConnected(func(e centrifuge.ConnectedEvent) {
		emit(event{"ev": "connected", "client": e.ClientID})
	})
	c.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		emit(event{"ev": "disconnected", "code": e.Code, "reason": e.Reason})
	})
	c.OnError(func(e centrifuge.ErrorEvent) {
		emit(withError(event{"ev": "error"}, e.Error))
	})
}

func (d *driver) subscribe(cmd command) {
	config := centrifuge.SubscriptionConfig{
		Token:       cmd.Token,
		Recoverable: cmd.Recoverable,
		JoinLeave:   cmd.JoinLeave,
	}
	if cmd.UseGetToken {
		config.GetToken = func(e centrifuge.SubscriptionTokenEvent) (string, error) {
			return d.tokens.ask("subscription", e.Channel)
		}
	}
	sub, err := d.client.NewSubscription(cmd.Channel, config)
	if err != nil {
		emit(withError(event{"ev": "sub_error", "channel": cmd.Channel}, err))
		return
	}
	d.subs[cmd.Channel] = sub
	onSubscriptionEvents(sub, cmd.Channel)
	if err := sub.Subscribe(); err != nil {
		emit(withError(event{"ev": "sub_error", "channel": cmd.Channel}, err))
	}
}

func onSubscriptionEvents(s *centrifuge.Subscription, channel string) {
	s.OnSubscribing(func(e centrifuge.SubscribingEvent) {
		emit(event{"ev": "sub_subscribing", "channel": channel, "code": e.Code, "reason": e.Reason})
	})
	s.OnSubscribed(func(e centrifuge.SubscribedEvent) {
		ev := event{
			"ev": "sub_subscribed", "channel": channel, "recoverable": e.Recoverable,
			"positioned": e.Positioned, "was_recovering": e.WasRecovering,
			"recovered": e.Recovered, "offset": nil, "epoch": nil,
		}
		if e.StreamPosition != nil {
			ev["offset"], ev["epoch"] = e.StreamPosition.Offset, e.StreamPosition.Epoch
		}
		emit(ev)
	})
	s.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		emit(event{"ev": "sub_unsubscribed", "channel": channel, "code": e.Code, "reason": e.Reason})
	})
	s.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		emit(withError(event{"ev": "sub_error", "channel": channel}, e.Error))
	})
	s.OnPublication(func(e centrifuge.PublicationEvent) {
		emit(event{"ev": "publication", "channel": channel, "data": plain(e.Data), "offset": e.Offset})
	})
	s.OnJoin(func(e centrifuge.JoinEvent) {
		emit(event{"ev": "join", "channel": channel, "client": e.Client, "user": e.User})
	})
	s.OnLeave(func(e centrifuge.LeaveEvent) {
		emit(event{"ev": "leave", "channel": channel, "client": e.Client, "user": e.User})
	})
}

// call runs presence, history or publish on sub (nil: not subscribed) and emits the reply.
func call(cmd command, sub *centrifuge.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if sub == nil {
		emit(event{"ev": "reply", "req": cmd.Req, "error": event{"code": 0, "message": "not subscribed"}})
		return
	}
	var result any
	var err error
	switch cmd.Op {
	case "presence":
		result, err = presence(ctx, sub)
	case "history":
		result, err = history(ctx, sub, cmd.Limit)
	case "publish":
		_, err = sub.Publish(ctx, cmd.Data)
		result = event{}
	}
	if err != nil {
		emit(event{"ev": "reply", "req": cmd.Req, "error": withError(event{}, err)})
		return
	}
	emit(event{"ev": "reply", "req": cmd.Req, "result": result})
}

func presence(ctx context.Context, sub *centrifuge.Subscription) (any, error) {
	res, err := sub.Presence(ctx)
	if err != nil {
		return nil, err
	}
	clients := event{}
	for id, info := range res.Clients {
		clients[id] = clientInfo(info)
	}
	return event{"clients": clients}, nil
}

func history(ctx context.Context, sub *centrifuge.Subscription, limit int32) (any, error) {
	res, err := sub.History(ctx, centrifuge.WithHistoryLimit(limit))
	if err != nil {
		return nil, err
	}
	pubs := make([]event, 0, len(res.Publications))
	for _, p := range res.Publications {
		pubs = append(pubs, event{"data": plain(p.Data), "offset": p.Offset})
	}
	return event{"publications": pubs, "offset": res.Offset, "epoch": res.Epoch}, nil
}

func clientInfo(info centrifuge.ClientInfo) event {
	return event{
		"client": info.Client, "user": info.User,
		"conn_info": plain(info.ConnInfo), "chan_info": plain(info.ChanInfo),
	}
}

// plain reports a payload as the JSON value it holds, so events look the same whatever the
// protocol; bytes that are not JSON are reported as {"base64": ...} by encoding/json.
func plain(data []byte) any {
	if len(data) == 0 {
		return nil
	}
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		return event{"base64": data}
	}
	return value
}

// withError adds "code" (a server error's code, 0 for the SDK's own) and "message" to ev.
func withError(ev event, err error) event {
	var server *centrifuge.Error
	ev["code"] = uint32(0)
	if errors.As(err, &server) {
		ev["code"] = server.Code
	}
	ev["message"] = err.Error()
	return ev
}

// tokenBroker turns a GetToken call into a request to the parent and waits for its answer.
type tokenBroker struct {
	mu      sync.Mutex
	seq     int
	waiting map[int]chan command
}

func newTokenBroker() *tokenBroker {
	return &tokenBroker{waiting: map[int]chan command{}}
}

func (b *tokenBroker) ask(kind, channel string) (string, error) {
	b.mu.Lock()
	b.seq++
	seq := b.seq
	answer := make(chan command, 1)
	b.waiting[seq] = answer
	b.mu.Unlock()
	emit(event{"ev": "token_request", "kind": kind, "channel": channel, "seq": seq})
	select {
	case cmd := <-answer:
		if cmd.Error != "" {
			return "", fmt.Errorf("token source failed: %s", cmd.Error)
		}
		return cmd.Token, nil
	case <-time.After(callTimeout):
		return "", errors.New("no token from the parent")
	}
}

func (b *tokenBroker) answer(cmd command) {
	b.mu.Lock()
	answer, ok := b.waiting[cmd.Seq]
	delete(b.waiting, cmd.Seq)
	b.mu.Unlock()
	if !ok {
		emit(event{"ev": "driver_error", "message": fmt.Sprintf("no token request %d", cmd.Seq)})
		return
	}
	answer <- cmd
}
