// Command goload holds many WebSocket subscribers and times every publication they receive,
// for `python -m bench latency` (driven by bench/goreceivers.py).
//
// Its first stdin line is the job:
//
//	{"clients":[{"url":"ws://…","connect_token":"…"},…],"dialect":"rotary"|"bare",
//	 "channel":"lat","max_inflight":100,"timeout":60}
//
// Every client is opened (at most max_inflight TCP/WebSocket handshakes at a time) and,
// in the rotary dialect, connected with its token and subscribed to channel; then one line
// goes out: {"ready":N,"failed":F,"failures":[first few reasons]}. After that each stdin
// line is a command and gets one stdout line:
//
//	{"op":"arm","per_client":K}  → {"armed":N}: counts zeroed, timing on.
//	{"op":"wait","timeout":S}    → once the live clients hold N×K publications, or after S
//	                               seconds: {"total","target","short_clients","cpu_s",
//	                               "latency":{bucket:count}} (bench/histogram.py's keys).
//	{"op":"close"}               → every connection closed, {"closed":N}, exit 0.
//
// A publication carries "t_ns":<CLOCK_MONOTONIC ns at its sending> as the last member of
// its data; receive − send is filed per publication. Meant to run with GOMAXPROCS=1 on
// a CPU of its own.
//
// gorilla/websocket opens each connection and runs the protocol's handshake; then the
// socket moves to one epoll loop (loop.go), which reads it with one read() per message
// and parses the server's frames itself. Reading through the library, a goroutine per
// connection, cost half as much kernel time per message again (a second read() that finds
// the socket empty before the goroutine parks, and the scheduler's thread wake-ups).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

type job struct {
	Clients []struct {
		URL          string `json:"url"`
		ConnectToken string `json:"connect_token"`
	} `json:"clients"`
	Dialect     string  `json:"dialect"`
	Channel     string  `json:"channel"`
	MaxInflight int     `json:"max_inflight"`
	Timeout     float64 `json:"timeout"`
}

type command struct {
	Op        string  `json:"op"`
	PerClient int64   `json:"per_client"`
	Timeout   float64 `json:"timeout"`
}

// How many failure reasons the ready line carries.
const maxReasons = 5

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	var j job
	if err := readLine(in, &j); err != nil {
		fail(err)
	}
	if j.Dialect != "rotary" && j.Dialect != "bare" {
		fail(fmt.Errorf("unknown dialect %q", j.Dialect))
	}
	clients, failed, reasons := openAll(&j)
	l, err := newLoop(clients)
	if err != nil {
		fail(err)
	}
	// Commands come on stdin from now on, read by the loop (from what bufio holds first).
	held, _ := in.Peek(in.Buffered())
	l.control = append(l.control, held...)
	l.emit(map[string]any{"ready": len(clients), "failed": failed, "failures": reasons})
	l.run()
}

// command carries out one command line, answering at once or (wait) once l.settle says.
func (l *loop) command(line []byte) {
	var c command
	if err := json.Unmarshal(line, &c); err != nil {
		l.quit(err)
	}
	switch c.Op {
	case "arm":
		l.cpuMark = cpuSeconds()
		l.emit(map[string]any{"armed": l.t.arm(l.clients, c.PerClient)})
	case "wait":
		l.waiting = true
		l.deadline = monotonicNs() + int64(c.Timeout*1e9)
	case "close":
		l.emit(map[string]any{"closed": l.closeAll()})
		// A moment for the servers' close frames, so that they log no aborted connections.
		time.Sleep(50 * time.Millisecond)
		os.Exit(0)
	default:
		l.quit(fmt.Errorf("unknown op %q", c.Op))
	}
}

// settle answers a pending wait once every publication expected is in or its time is up.
func (l *loop) settle() {
	if l.waiting && (l.t.complete() || monotonicNs() >= l.deadline) {
		l.waiting = false
		cpu := cpuSeconds() - l.cpuMark // before the histogram is made
		l.emit(l.t.report(l.clients, cpu))
	}
}

func (l *loop) emit(v any) {
	if err := l.out.Encode(v); err != nil {
		fail(err)
	}
}

func (l *loop) quit(err error) {
	l.closeAll()
	fail(err)
}

// openAll opens every client of j at once, with at most j.MaxInflight handshakes in
// flight; the ready ones, how many failed, and the first few reasons why.
func openAll(j *job) ([]*client, int, []string) {
	gate := make(chan struct{}, max(1, j.MaxInflight))
	timeout := time.Duration(max(j.Timeout, 1) * float64(time.Second))
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		ready   []*client
		failed  int
		reasons []string
	)
	for _, spec := range j.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := open(spec.URL, spec.ConnectToken, j, gate, timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if len(reasons) < maxReasons {
					reasons = append(reasons, err.Error())
				}
				return
			}
			ready = append(ready, c)
		}()
	}
	wg.Wait()
	if reasons == nil {
		reasons = []string{}
	}
	return ready, failed, reasons
}

func readLine(in *bufio.Reader, into any) error {
	line, err := in.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("stdin: %w", err)
	}
	return json.Unmarshal(line, into)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goload:", err)
	os.Exit(1)
}

// cpuSeconds is the CPU time (user + system) of the whole process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	return sec(ru.Utime) + sec(ru.Stime)
}
