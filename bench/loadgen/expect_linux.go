package loadgen

import (
	"slices"
	"time"
)

// expectation is a connection's Expect state: the Seqs it still expects,
// in lists that are each ascending (one per topic, say). The lists are
// the caller's and may be shared between connections: they are only ever
// re-sliced, never written.
type expectation struct {
	lists [][]uint64
	Expectation
}

// Expect sets, for each connection idx[k], the events it is expected to
// receive from now on: the Seqs in lists(k), each list ascending, in Seq
// order across the lists (as a store replays them). Received events are
// checked against them as they arrive (see Expectation): a connection
// needs no memory per event. Call it before the connections are opened
// (ReconnectConns), or for open ones before the events are published.
func (g *Gen) Expect(idx []int, lists func(k int) [][]uint64) {
	conns := g.connsSnapshot()
	for k, i := range idx {
		c := conns[i]
		e := &expectation{lists: slices.Clone(lists(k))}
		for _, l := range e.lists {
			e.Expected += len(l)
		}
		c.w.mu.Lock()
		c.exp = e
		c.w.mu.Unlock()
	}
}

// Expectations returns, for each connection idx[k], what it was expected
// to receive and what it did (see Expect).
func (g *Gen) Expectations(idx []int) []Expectation {
	conns := g.connsSnapshot()
	out := make([]Expectation, len(idx))
	for k, i := range idx {
		c := conns[i]
		c.w.mu.Lock()
		if c.exp != nil {
			out[k] = c.exp.Expectation
		}
		out[k].Open = c.state == stOpen && c.headOK
		c.w.mu.Unlock()
	}
	return out
}

// ExpectProgress counts the connections given expectations, and of them
// those that have received every expected event and those closed (by the
// server or a failed connect) before that.
func (g *Gen) ExpectProgress() (expecting, done, closed int) {
	for _, c := range g.connsSnapshot() {
		c.w.mu.Lock()
		if c.exp != nil {
			expecting++
			switch {
			case c.exp.Done:
				done++
			case c.state == stClosed:
				closed++
			}
		}
		c.w.mu.Unlock()
	}
	return
}

// check takes an event with Seq seq (event true), or the response head
// (event false: a connection expecting nothing is done at its head).
func (e *expectation) check(c *conn, seq uint64, event bool) {
	if !event {
		if !e.Done && e.Expected == 0 {
			e.done(c)
		}
		return
	}
	if e.Done {
		e.Odd++
		return
	}
	hit := -1
	for li, l := range e.lists {
		if _, ok := slices.BinarySearch(l, seq); ok {
			hit = li
			break
		}
	}
	if hit < 0 { // not expected, or expected and already received
		e.Odd++
		return
	}
	// Every expected Seq below seq should have come before it.
	for li, l := range e.lists {
		k, _ := slices.BinarySearch(l, seq)
		e.Skipped += k
		e.lists[li] = l[k:]
	}
	e.lists[hit] = e.lists[hit][1:]
	e.Got++
	for _, l := range e.lists {
		if len(l) > 0 {
			return
		}
	}
	e.done(c)
}

func (e *expectation) done(c *conn) {
	e.Done = true
	e.Latency = time.Duration(c.w.now - c.dialAt)
}
