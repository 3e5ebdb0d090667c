package main

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// monotonicNs is CLOCK_MONOTONIC in ns, the clock the publisher stamps with.
//
// Go's own monotonic readings count from the start of the process, so they cannot be
// compared with another process's; unix.ClockGettime can, but is a system call each time.
// So the clock is read once at start-up and then advanced by Go's monotonic clock (the
// same CLOCK_MONOTONIC underneath, read through the vDSO).
var monotonicNs = func() func() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	base, since := ts.Nano(), time.Now()
	return func() int64 { return base + int64(time.Since(since)) }
}()

// The histogram of bench/histogram.py: bucket ⌊ln(max(ns, 1 µs) / 1 µs) / ln 1.01⌋.
const floorNs = 1000

var step = math.Log(1.01)

func bucket(ns int64) int {
	return int(math.Log(float64(max(ns, floorNs))/floorNs) / step)
}

// tally counts the publications of every client and keeps their latencies while armed.
type tally struct {
	armed   bool
	total   int64
	target  int64
	samples []int64
}

// arm zeroes the counts and starts timing, towards perClient publications for each client
// live now. The number of live clients.
func (t *tally) arm(clients []*client, perClient int64) int {
	live := 0
	for _, c := range clients {
		c.received = 0
		if !c.gone {
			live++
		}
	}
	t.armed, t.total, t.target = true, 0, int64(live)*perClient
	t.samples = t.samples[:0]
	return live
}

// add files n publications received by c in one message, and the latency of every
// stamp in it (stamps: send times, read off the message by the caller).
func (t *tally) add(c *client, n int64, stamps []int64, now int64) {
	c.received += n
	if !t.armed {
		return
	}
	for _, s := range stamps {
		t.samples = append(t.samples, now-s)
	}
	t.total += n
}

// complete: every publication expected since arm is in.
func (t *tally) complete() bool {
	return t.armed && t.total >= t.target
}

// report is the answer to wait (see the package comment); cpu: seconds since arm.
func (t *tally) report(clients []*client, cpu float64) map[string]any {
	perClient, live, short := int64(0), int64(0), 0
	for _, c := range clients {
		if !c.gone {
			live++
		}
	}
	if live > 0 {
		perClient = t.target / live
	}
	for _, c := range clients {
		if !c.gone && c.received < perClient {
			short++
		}
	}
	latency := map[int]int64{}
	for _, ns := range t.samples {
		latency[bucket(ns)]++
	}
	return map[string]any{
		"total":         t.total,
		"target":        t.target,
		"short_clients": short,
		"cpu_s":         cpu,
		"latency":       latency,
	}
}
