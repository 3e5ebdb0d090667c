package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WebSocket opcodes (RFC 6455 §5.2) the loop tells apart.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
)

// readSize bounds one read(): a burst leaves one small message per connection, so this
// only matters for the rare large frame, which arrives over several reads.
const readSize = 256 << 10

// loop reads every client's socket and the commands on stdin from one epoll set, on one
// goroutine locked to its OS thread: per message, one read() and a share of one
// epoll_wait, and no other thread woken (a goroutine per connection, or the loop on a
// goroutine of its own beside a control one, costs the scheduler's wake-ups and hand-offs
// on every burst).
type loop struct {
	epfd    int
	clients []*client
	byFd    []*client
	t       tally
	buf     []byte
	pongs   []byte
	out     *json.Encoder
	control []byte
	// A wait command being served: answered by settle.
	waiting  bool
	deadline int64
	cpuMark  float64
}

func newLoop(clients []*client) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &loop{epfd: epfd, clients: clients, buf: make([]byte, readSize)}
	l.out = json.NewEncoder(os.Stdout)
	for _, c := range clients {
		for c.fd >= len(l.byFd) {
			l.byFd = append(l.byFd, nil)
		}
		l.byFd[c.fd] = c
	}
	// Level-triggered: a socket holding more after one read is simply reported again.
	for _, fd := range append([]int{stdin}, fds(clients)...) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, err
		}
	}
	return l, nil
}

const stdin = 0

func fds(clients []*client) []int {
	out := make([]int, len(clients))
	for k, c := range clients {
		out[k] = c.fd
	}
	return out
}

// run serves the sockets and the commands until close (or stdin's end) ends the process.
func (l *loop) run() {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 512)
	for {
		if len(l.control) > 0 {
			l.commands()
		}
		l.settle()
		n, errno := epollWait(l.epfd, events, l.timeoutMs())
		if errno != 0 {
			if errno != unix.EINTR { // EINTR: the runtime's signals (preemption, GC)
				l.quit(errno)
			}
			n = 0
		}
		for _, ev := range events[:n] {
			if ev.Fd == stdin {
				l.readControl()
			} else if c := l.byFd[ev.Fd]; c != nil && !c.gone {
				l.readable(c)
			}
		}
	}
}

// epollWait is epoll_wait as a raw system call: the scheduler is not told of it, so no
// thread is woken to take over while it blocks (nothing else is there to run).
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	return int(r), errno
}

// timeoutMs: how long epoll_wait may block, until a pending wait's deadline at most.
func (l *loop) timeoutMs() int {
	if !l.waiting {
		return -1
	}
	return int(max(0, (l.deadline-monotonicNs()+999_999)/1_000_000))
}

// readControl reads what stdin holds; its end (the driver gone) ends the process.
func (l *loop) readControl() {
	n, err := unix.Read(stdin, l.buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n <= 0 {
		l.closeAll()
		os.Exit(0)
	}
	l.control = append(l.control, l.buf[:n]...)
}

// commands carries out every whole line of l.control.
func (l *loop) commands() {
	for {
		end := bytes.IndexByte(l.control, '\n')
		if end < 0 {
			return
		}
		line := bytes.Clone(l.control[:end])
		l.control = l.control[end+1:]
		if len(bytes.TrimSpace(line)) > 0 {
			l.command(line)
		}
	}
}

// readable reads once from c and handles every whole frame read so far.
func (l *loop) readable(c *client) {
	n, err := unix.Read(c.fd, l.buf)
	if errors.Is(err, unix.EAGAIN) {
		return
	}
	if n <= 0 {
		l.drop(c)
		return
	}
	now := monotonicNs()
	data := l.buf[:n]
	if len(c.partial) > 0 {
		c.partial = append(c.partial, data...)
		data = c.partial
	}
	rest := l.frames(c, data, now)
	// Keep the unfinished frame's bytes (copied: data may be the shared read buffer).
	c.partial = append(c.partial[:0], rest...)
}

// frames handles the whole frames at the start of data; what is left of a frame that has
// not fully arrived.
func (l *loop) frames(c *client, data []byte, now int64) []byte {
	for len(data) >= 2 {
		head, size, ok := frameSize(data)
		if !ok || len(data) < head+size {
			return data
		}
		fin, op := data[0]&0x80 != 0, data[0]&0x0F
		payload := data[head : head+size]
		if data[1]&0x80 != 0 { // a masked server frame is against the RFC; unmask anyway
			unmask(payload, data[head-4:head])
		}
		data = data[head+size:]
		switch {
		case op == opText || op == opBinary || op == opContinuation:
			l.message(c, fin, op == opContinuation, payload, now)
		case op == opPing:
			l.send(c, opPing+1, payload)
		case op == opClose:
			l.send(c, opClose, nil)
			l.drop(c)
			return nil
		}
	}
	return data
}

// frameSize: the length of the frame header at data's start and of its payload; false
// when the header itself is not complete yet.
func frameSize(data []byte) (int, int, bool) {
	head, size := 2, int(data[1]&0x7F)
	switch size {
	case 126:
		if len(data) < 4 {
			return 0, 0, false
		}
		head, size = 4, int(binary.BigEndian.Uint16(data[2:4]))
	case 127:
		if len(data) < 10 {
			return 0, 0, false
		}
		head, size = 10, int(binary.BigEndian.Uint64(data[2:10]))
	}
	if data[1]&0x80 != 0 {
		head += 4
	}
	return head, size, len(data) >= head
}

// message passes a whole message on to deliver, gathering a fragmented one first.
func (l *loop) message(c *client, fin, continuation bool, payload []byte, now int64) {
	if fin && !continuation && len(c.message) == 0 {
		l.deliver(c, payload, now)
		return
	}
	c.message = append(c.message, payload...)
	if fin {
		l.deliver(c, c.message, now)
		c.message = c.message[:0]
	}
}

// deliver counts one message: every "pub": in it (rotary) or the message itself (bare),
// timing every "t_ns": stamp; rotary pings (a line "{}") are answered.
func (l *loop) deliver(c *client, data []byte, now int64) {
	n := int64(1)
	if c.rotary {
		n = int64(bytes.Count(data, pubMark))
		if bytes.Contains(data, ping) {
			for line := range bytes.SplitSeq(data, []byte("\n")) {
				if bytes.Equal(line, ping) {
					l.send(c, opText, ping)
					break
				}
			}
		}
		if n == 0 {
			return
		}
	}
	l.t.add(c, n, c.readStamps(data), now)
}

// send writes one masked frame (clients must mask, RFC 6455 §5.3) carrying payload.
func (l *loop) send(c *client, op byte, payload []byte) {
	frame := l.pongs[:0]
	frame = append(frame, 0x80|op)
	switch {
	case len(payload) < 126:
		frame = append(frame, 0x80|byte(len(payload)))
	default:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(len(payload)))
	}
	key := rand.Uint32()
	frame = binary.BigEndian.AppendUint32(frame, key)
	start := len(frame)
	frame = append(frame, payload...)
	unmask(frame[start:], frame[start-4:start])
	l.pongs = frame
	_, _ = unix.Write(c.fd, frame) // a small frame to an idle socket: never partial
}

func unmask(payload, key []byte) {
	for i := range payload {
		payload[i] ^= key[i&3]
	}
}

// drop ends c: its socket is closed (which also takes it out of the epoll set).
func (l *loop) drop(c *client) {
	c.gone = true
	_ = unix.Close(c.fd)
}

// closeAll sends every live client a close frame and half-closes its socket (the
// process ends after). How many there were.
func (l *loop) closeAll() int {
	closed := 0
	for _, c := range l.clients {
		if !c.gone {
			l.send(c, opClose, []byte{0x03, 0xE8}) // 1000: normal closure
			_ = unix.Shutdown(c.fd, unix.SHUT_WR)
			closed++
		}
	}
	return closed
}

// readStamps collects the send time of every "t_ns": in data (the digits after it).
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
