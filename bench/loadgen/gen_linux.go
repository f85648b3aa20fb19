package loadgen

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Gen opens and reads many SSE connections from a few goroutines: each
// worker owns an epoll instance, non-blocking sockets and one shared read
// buffer, and parses what it reads in place.
type Gen struct {
	cfg     Config
	dst     syscall.SockaddrInet4
	reqTail string // the request after its path, without Last-Event-ID and final CRLF
	workers []*worker
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []*conn
}

type worker struct {
	g    *Gen
	epfd int
	dst  syscall.SockaddrInet4 // per worker: Connect writes into it
	wake [2]int                // pipe: the runner writes a byte to wake epoll_wait
	buf  []byte
	stop atomic.Bool

	mu          sync.Mutex // guards everything below and every conn of this worker
	byFD        []*conn
	pending     []*conn // waiting to connect
	inflight    int     // connects not yet answered
	maxInflight int     // Config.MaxInflight, or SetMaxInflight's
	now         int64   // time of the current read, unix ns

	opened, failed, peerClosed int64 // lifetime counters
	abandoned                  int64 // closed by the generator before a head
	lastOpenAt                 int64
	headLat                    Hist             // request sent to response head (see TakeHeadLatency)
	resets                     map[string]int64 // reset events by reason, lifetime

	// Phase state (see Mark).
	markAt        int64
	marked        int
	complete      int
	markedClosed  int
	delivered     int64 // in-range events that advanced a conn
	gaps, dups    int64
	other         int64 // events whose data is not "<ts> <seq>"
	firstEventAt  int64 // first and last in-range event
	lastEventAt   int64
	lat, complHis Hist
}

type connState uint8

const (
	stIdle connState = iota
	stConnecting
	stOpen // request sent; the stream (head, then body) is being read
	stClosed
)

type conn struct {
	w       *worker
	idx     int
	fd      int
	state   connState
	headOK  bool
	ownStop bool // closed by the generator, not the server
	src     [4]byte
	path    string // request path; Config.Path when empty
	stream  stream
	lastSeq uint64
	lastID  string // Last-Event-ID to send on the next connect
	dialAt  int64  // unix ns of the latest connect
	sentAt  int64  // and of its request
	resets  int    // reset events received, lifetime

	exp *expectation // see Gen.Expect

	// Phase (see Mark).
	marked bool
	done   bool
	lo, hi uint64
	need   int
	got    int
}

// New starts a generator's workers. It opens no connection yet.
func New(cfg Config) (*Gen, error) {
	cfg.setDefaults()
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("loadgen: Addr %q: want an IPv4 host:port", cfg.Addr)
	}
	g := &Gen{cfg: cfg, dst: syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}}
	g.reqTail = " HTTP/1.1\r\nHost: " + cfg.Addr +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: ssekit-bench\r\n"
	for range cfg.Workers {
		w := &worker{g: g, dst: g.dst, buf: make([]byte, cfg.ReadBuffer), maxInflight: cfg.MaxInflight, resets: map[string]int64{}}
		if w.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
			g.Close()
			return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
		}
		if err = syscall.Pipe2(w.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
			_ = syscall.Close(w.epfd)
			g.Close()
			return nil, fmt.Errorf("loadgen: pipe: %w", err)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.wake[0])}
		if err = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
			w.closeFDs()
			g.Close()
			return nil, fmt.Errorf("loadgen: epoll_ctl: %w", err)
		}
		g.workers = append(g.workers, w)
		g.wg.Add(1)
		go w.loop()
	}
	return g, nil
}

// Connect opens n more connections. lastID, when not nil, gives the
// Last-Event-ID header of the i-th new one (empty: none). It returns at
// once, with the index of the first new connection (connections are
// numbered from 0 in the order they were created); watch Stats for the
// outcome.
func (g *Gen) Connect(n int, lastID func(i int) string) int {
	return g.ConnectPath(n, nil, lastID)
}

// ConnectPath is Connect with a request path per connection: path(i),
// when path is not nil, gives the i-th new one's (such as
// "/events?topic=a"); Config.Path otherwise.
func (g *Gen) ConnectPath(n int, path, lastID func(i int) string) int {
	g.mu.Lock()
	base := len(g.conns)
	byWorker := make([][]*conn, len(g.workers))
	for i := range n {
		idx := base + i
		w := g.workers[idx%len(g.workers)]
		c := &conn{w: w, idx: idx, fd: -1}
		c.src = [4]byte{127, 0, 0, byte(1 + idx%g.cfg.SourceAddrs)}
		if path != nil {
			c.path = path(i)
		}
		if lastID != nil {
			c.lastID = lastID(i)
		}
		g.conns = append(g.conns, c)
		byWorker[idx%len(g.workers)] = append(byWorker[idx%len(g.workers)], c)
	}
	g.mu.Unlock()
	for i, w := range g.workers {
		w.enqueue(byWorker[i])
	}
	return base
}

// SetMaxInflight changes Config.MaxInflight (0: no bound), for the
// connects that follow.
func (g *Gen) SetMaxInflight(n int) {
	for _, w := range g.workers {
		w.mu.Lock()
		w.maxInflight = n
		w.mu.Unlock()
	}
	for _, w := range g.workers {
		w.poke()
	}
}

// CloseConns closes the given connections (by index) from the client side.
func (g *Gen) CloseConns(idx []int) {
	conns := g.connsSnapshot()
	for _, i := range idx {
		c := conns[i]
		w := c.w
		w.mu.Lock()
		switch c.state {
		case stIdle: // still waiting to connect: never will
			w.pending = slices.DeleteFunc(w.pending, func(p *conn) bool { return p == c })
			c.state = stClosed
		case stConnecting, stOpen:
			c.ownStop = true
			w.closeConn(c)
		}
		w.mu.Unlock()
	}
}

// Open reports, for each connection idx[k], whether its stream is open:
// its 200 head came and it is not closed.
func (g *Gen) Open(idx []int) []bool {
	conns := g.connsSnapshot()
	out := make([]bool, len(idx))
	for k, i := range idx {
		c := conns[i]
		c.w.mu.Lock()
		out[k] = c.state == stOpen && c.headOK
		c.w.mu.Unlock()
	}
	return out
}

// LastIDs returns, for every connection by index, the last event ID it
// has received (what Reconnect would send as Last-Event-ID).
func (g *Gen) LastIDs() []string {
	conns := g.connsSnapshot()
	out := make([]string, len(conns))
	for i, c := range conns {
		c.w.mu.Lock()
		out[i] = string(c.stream.id[:c.stream.idLen])
		c.w.mu.Unlock()
	}
	return out
}

// ReconnectConns opens the given closed connections again (by index),
// the i-th with lastID[i] as Last-Event-ID ("" for none). A connection
// that is not closed is left alone.
func (g *Gen) ReconnectConns(idx []int, lastID []string) {
	conns := g.connsSnapshot()
	byWorker := make([][]*conn, len(g.workers))
	for k, i := range idx {
		c := conns[i]
		w := c.w
		w.mu.Lock()
		if c.state == stClosed {
			c.lastID = lastID[k]
			c.stream = stream{}
			c.state, c.headOK, c.ownStop = stIdle, false, false
			byWorker[i%len(g.workers)] = append(byWorker[i%len(g.workers)], c)
		}
		w.mu.Unlock()
	}
	for i, w := range g.workers {
		w.enqueue(byWorker[i])
	}
}

// Got returns, for every connection by index, how many events of the
// current phase's range it has received (see Mark).
func (g *Gen) Got() []int {
	conns := g.connsSnapshot()
	out := make([]int, len(conns))
	for i, c := range conns {
		c.w.mu.Lock()
		out[i] = c.got
		c.w.mu.Unlock()
	}
	return out
}

// TakeHeadLatency returns the times from sending a request to receiving
// its response head (any status) since the last call, and starts anew.
func (g *Gen) TakeHeadLatency() Hist {
	var h Hist
	for _, w := range g.workers {
		w.mu.Lock()
		h.Merge(&w.headLat)
		w.headLat.Reset()
		w.mu.Unlock()
	}
	return h
}

// Resets returns the reset events received by all connections so far, by
// reason.
func (g *Gen) Resets() map[string]int64 {
	out := map[string]int64{}
	for _, w := range g.workers {
		w.mu.Lock()
		for r, n := range w.resets {
			out[r] += n
		}
		w.mu.Unlock()
	}
	return out
}

// Reconnect opens every closed connection again (call CloseAll first),
// with the last event ID it saw as Last-Event-ID. Each connection keeps its
// last sequence number, so gaps and duplicates across the reconnect are
// counted, and its phase mark (see MarkAll).
func (g *Gen) Reconnect() {
	g.mu.Lock()
	byWorker := make([][]*conn, len(g.workers))
	for _, c := range g.conns {
		w := c.w
		w.mu.Lock()
		if c.state != stClosed {
			w.mu.Unlock()
			continue
		}
		c.lastID = string(c.stream.id[:c.stream.idLen])
		c.stream = stream{}
		c.state, c.headOK, c.ownStop = stIdle, false, false
		w.mu.Unlock()
		byWorker[c.idx%len(g.workers)] = append(byWorker[c.idx%len(g.workers)], c)
	}
	g.mu.Unlock()
	for i, w := range g.workers {
		w.enqueue(byWorker[i])
	}
}

// CloseAll closes every connection from the client side.
func (g *Gen) CloseAll() {
	for _, w := range g.workers {
		w.mu.Lock()
		for _, c := range w.byFD {
			if c != nil {
				c.ownStop = true
				w.closeConn(c)
			}
		}
		w.pending = w.pending[:0]
		w.mu.Unlock()
	}
}

// Close closes every connection and stops the workers.
func (g *Gen) Close() {
	g.CloseAll()
	for _, w := range g.workers {
		w.stop.Store(true)
		w.poke()
	}
	g.wg.Wait()
	for _, w := range g.workers {
		w.closeFDs()
	}
	g.workers = nil
}

// Stats returns the lifetime counters.
func (g *Gen) Stats() Stats {
	var s Stats
	s.Conns = len(g.connsSnapshot())
	for _, w := range g.workers {
		w.mu.Lock()
		s.Opened += w.opened
		s.Failed += w.failed
		s.Abandoned += w.abandoned
		s.PeerClosed += w.peerClosed
		s.LastOpenAt = max(s.LastOpenAt, w.lastOpenAt)
		for _, c := range w.byFD {
			if c != nil && c.headOK {
				s.Open++
			}
		}
		w.mu.Unlock()
	}
	return s
}

func (g *Gen) connsSnapshot() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns
}

// Mark starts a phase: every open connection is expected to receive the
// events with sequence numbers lo..hi (inclusive), and is complete once it
// has need of them. Phase counters and histograms are reset.
func (g *Gen) Mark(lo, hi uint64, need int) { g.mark(lo, hi, need, false) }

// MarkAll is Mark for every connection, open or not: use it before
// Reconnect, so that events replayed right after a reconnect count.
func (g *Gen) MarkAll(lo, hi uint64, need int) { g.mark(lo, hi, need, true) }

func (g *Gen) mark(lo, hi uint64, need int, all bool) {
	conns := g.connsSnapshot()
	now := time.Now().UnixNano()
	for _, w := range g.workers {
		w.mu.Lock()
	}
	for _, w := range g.workers {
		w.markAt, w.marked, w.complete, w.markedClosed = now, 0, 0, 0
		w.delivered, w.gaps, w.dups, w.other = 0, 0, 0, 0
		w.firstEventAt, w.lastEventAt = 0, 0
		w.lat.Reset()
		w.complHis.Reset()
	}
	for _, c := range conns {
		c.marked = c.headOK || all
		c.done, c.lo, c.hi, c.need, c.got = false, lo, hi, need, 0
		if c.marked {
			c.w.marked++
		}
	}
	for _, w := range g.workers {
		w.mu.Unlock()
	}
}

// Progress reports the current phase: connections marked, how many of them
// have received what they need, how many closed before that, and the
// in-range events delivered so far.
func (g *Gen) Progress() (marked, complete, closed int, delivered int64) {
	for _, w := range g.workers {
		w.mu.Lock()
		marked += w.marked
		complete += w.complete
		closed += w.markedClosed
		delivered += w.delivered
		w.mu.Unlock()
	}
	return
}

// Phase returns the current phase's results.
func (g *Gen) Phase() Phase {
	var p Phase
	for _, w := range g.workers {
		w.mu.Lock()
		p.Marked += w.marked
		p.Complete += w.complete
		p.Closed += w.markedClosed
		p.Delivered += w.delivered
		p.Gaps += w.gaps
		p.Dups += w.dups
		p.Other += w.other
		if w.firstEventAt != 0 && (p.FirstEventAt == 0 || w.firstEventAt < p.FirstEventAt) {
			p.FirstEventAt = w.firstEventAt
		}
		p.LastEventAt = max(p.LastEventAt, w.lastEventAt)
		p.MarkAt = w.markAt
		p.Latency.Merge(&w.lat)
		p.Completion.Merge(&w.complHis)
		w.mu.Unlock()
	}
	for _, c := range g.connsSnapshot() {
		c.w.mu.Lock()
		if c.marked {
			span := int64(c.hi - c.lo + 1)
			p.Expected += span
			p.Losses += max(0, span-int64(c.got))
		}
		c.w.mu.Unlock()
	}
	return p
}

func (w *worker) enqueue(cs []*conn) {
	if len(cs) == 0 {
		return
	}
	w.mu.Lock()
	w.pending = append(w.pending, cs...)
	w.mu.Unlock()
	w.poke()
}

func (w *worker) poke() {
	_, _ = syscall.Write(w.wake[1], []byte{1})
}

func (w *worker) closeFDs() {
	for _, fd := range []int{w.epfd, w.wake[0], w.wake[1]} {
		if fd > 0 {
			_ = syscall.Close(fd)
		}
	}
	w.epfd, w.wake = -1, [2]int{-1, -1}
}

func (w *worker) loop() {
	defer w.g.wg.Done()
	events := make([]syscall.EpollEvent, 512)
	var drain [64]byte
	for !w.stop.Load() {
		n, err := syscall.EpollWait(w.epfd, events, 50)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		w.mu.Lock()
		w.startPending()
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == w.wake[0] {
				for {
					if k, _ := syscall.Read(fd, drain[:]); k <= 0 {
						break
					}
				}
				continue
			}
			if fd >= len(w.byFD) || w.byFD[fd] == nil {
				continue
			}
			w.handle(w.byFD[fd], events[i].Events)
		}
		w.mu.Unlock()
	}
}

// startPending starts connects, keeping at most MaxInflight unanswered.
func (w *worker) startPending() {
	k := 0
	for ; k < len(w.pending); k++ {
		if w.maxInflight > 0 && w.inflight >= w.maxInflight {
			break
		}
		w.dial(w.pending[k])
	}
	w.pending = w.pending[:copy(w.pending, w.pending[k:])]
}

func (w *worker) dial(c *conn) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		w.failed++
		return
	}
	// Let connect() pick the port per 4-tuple rather than bind() per
	// source address, so several source addresses multiply the ports.
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	if w.g.cfg.SourceAddrs > 1 {
		src := syscall.SockaddrInet4{Addr: c.src}
		if err := syscall.Bind(fd, &src); err != nil {
			_ = syscall.Close(fd)
			w.failed++
			return
		}
	}
	c.fd, c.state = fd, stConnecting
	c.dialAt = time.Now().UnixNano()
	w.setFD(fd, c)
	w.inflight++
	err = syscall.Connect(fd, &w.dst)
	switch {
	case err == nil:
		w.sendRequest(c)
	case errors.Is(err, syscall.EINPROGRESS):
		ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(fd)}
		if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
			w.closeConn(c)
		}
	default:
		w.closeConn(c)
	}
}

const ipBindAddressNoPort = 24 // IP_BIND_ADDRESS_NO_PORT, Linux 4.2+

func (w *worker) setFD(fd int, c *conn) {
	for fd >= len(w.byFD) {
		w.byFD = append(w.byFD, make([]*conn, len(w.byFD)+1024)...)
	}
	w.byFD[fd] = c
}

func (w *worker) sendRequest(c *conn) {
	path := c.path
	if path == "" {
		path = w.g.cfg.Path
	}
	req := "GET " + path + w.g.reqTail
	if c.lastID != "" {
		req += "Last-Event-ID: " + c.lastID + "\r\n"
	}
	req += "\r\n"
	if n, err := syscall.Write(c.fd, []byte(req)); err != nil || n != len(req) {
		w.closeConn(c)
		return
	}
	c.state = stOpen
	c.sentAt = time.Now().UnixNano()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	op := syscall.EPOLL_CTL_MOD
	if err := syscall.EpollCtl(w.epfd, op, c.fd, &ev); errors.Is(err, syscall.ENOENT) {
		op = syscall.EPOLL_CTL_ADD
		err = syscall.EpollCtl(w.epfd, op, c.fd, &ev)
		if err != nil {
			w.closeConn(c)
		}
	} else if err != nil {
		w.closeConn(c)
	}
}

func (w *worker) handle(c *conn, ev uint32) {
	if c.state == stConnecting {
		if ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			return
		}
		if soErr, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || soErr != 0 {
			w.closeConn(c)
			return
		}
		w.sendRequest(c)
		return
	}
	if c.state != stOpen {
		return
	}
	n, err := syscall.Read(c.fd, w.buf)
	if n <= 0 {
		if n < 0 && errors.Is(err, syscall.EAGAIN) {
			return
		}
		w.closeConn(c)
		return
	}
	w.now = time.Now().UnixNano()
	c.stream.feed(w.buf[:n], c)
	if c.state == stOpen && c.stream.body && !c.headOK {
		w.closeConn(c) // not a 200
	}
}

// closeConn closes c's socket and counts why.
func (w *worker) closeConn(c *conn) {
	if c.fd >= 0 {
		_ = syscall.Close(c.fd) // also removes it from the epoll set
		if c.fd < len(w.byFD) {
			w.byFD[c.fd] = nil
		}
	}
	switch {
	case c.headOK && !c.ownStop:
		w.peerClosed++
	case c.state == stConnecting || (c.state == stOpen && !c.headOK):
		w.inflight--
		if c.ownStop {
			w.abandoned++
		} else {
			w.failed++
		}
	}
	if c.marked && !c.done {
		w.markedClosed++
		c.done = true
	}
	c.fd, c.state = -1, stClosed
}

func (c *conn) onHead(status int) {
	w := c.w
	if c.sentAt > 0 {
		w.headLat.Record(w.now - c.sentAt)
	}
	if status != 200 {
		return
	}
	c.headOK = true
	w.inflight--
	w.opened++
	w.lastOpenAt = w.now
	if c.exp != nil {
		c.exp.check(c, 0, false)
	}
}

func (c *conn) onReset(reason []byte) {
	c.resets++
	c.w.resets[string(reason)]++
	if c.exp != nil {
		c.exp.Resets++
		if c.exp.Reason == "" {
			c.exp.Reason = string(reason)
		}
	}
}

func (c *conn) onEvent(ts int64, seq uint64, ok bool) {
	w := c.w
	if !ok {
		w.other++
		return
	}
	if c.exp != nil {
		c.exp.check(c, seq, true)
	}
	switch {
	case c.lastSeq == 0 || seq == c.lastSeq+1:
	case seq > c.lastSeq:
		w.gaps += int64(seq - c.lastSeq - 1)
	default:
		w.dups++
	}
	advanced := seq > c.lastSeq
	if advanced {
		c.lastSeq = seq
	}
	if !c.marked || seq < c.lo || seq > c.hi {
		return
	}
	if w.firstEventAt == 0 {
		w.firstEventAt = w.now
	}
	w.lastEventAt = w.now
	w.lat.Record(w.now - ts)
	if !advanced {
		return
	}
	c.got++
	w.delivered++
	if c.got == c.need && !c.done {
		c.done = true
		w.complete++
		w.complHis.Record(w.now - w.markAt)
	}
}
