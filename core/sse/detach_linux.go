package sse

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
)

func defaultPoller() (poller, error) { return newEpoller() }

// epoller is the Linux poller: one epoll instance, edge-triggered, watched
// by one goroutine. It reports a peer's close or reset (EPOLLRDHUP,
// EPOLLHUP, EPOLLERR) at once, and a full socket's becoming writable
// (EPOLLOUT). A pipe wakes the goroutine to stop it.
//
// EPOLLRDHUP also comes when the peer only shuts down its sending side
// (shutdown(SHUT_WR), a half-close) and would still read: the stream ends
// all the same, as "client gone" (EndClientGone). That is deliberate.
// EventSource never half-closes; a client that does has said it is done
// with the connection, and net/http treats it alike (its background read
// sees EOF and cancels the request's context, which ends an attached
// stream).
//
// The descriptors (the epoll instance and the pipe) are closed by close
// only, once, after run has returned, and add and remove do not use them
// once close has begun: a number closed early could be given to another
// file meanwhile, which a late epoll_ctl or stop byte would then hit.
type epoller struct {
	epfd int
	pipe [2]int // the read end is in the epoll set; a byte on it stops run
	wait func(epfd int, events []syscall.EpollEvent, msec int) (int, error)
	done chan struct{} // closed when run has returned

	fdMu   sync.RWMutex // held to read while using the descriptors, to write by close
	closed bool         // close has begun; guarded by fdMu
	failed atomic.Bool  // epoll_wait failed: nothing is watched any more

	mu    sync.Mutex
	conns map[int32]*detachedConn
	next  int32
}

const (
	epollET    = 1 << 31
	stopMarker = -1 // the epoll data of the pipe
)

// epollWait is syscall.EpollWait; tests make it fail.
var epollWait = syscall.EpollWait

func newEpoller() (*epoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sse: epoll_create1: %w", err)
	}
	e := &epoller{epfd: epfd, wait: epollWait, done: make(chan struct{}), conns: make(map[int32]*detachedConn)}
	if err := syscall.Pipe2(e.pipe[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("sse: pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: stopMarker}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, e.pipe[0], &ev); err != nil {
		e.closeFDs()
		return nil, fmt.Errorf("sse: epoll_ctl: %w", err)
	}
	go e.run()
	return e, nil
}

func (e *epoller) closeFDs() {
	syscall.Close(e.pipe[0])
	syscall.Close(e.pipe[1])
	syscall.Close(e.epfd)
}

// run reports the events of the epoll set until close stops it or
// epoll_wait fails. It closes nothing: close does, after it returns.
func (e *epoller) run() {
	defer close(e.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := e.wait(e.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			// Not expected; without the poller, streams still end through
			// failing heartbeats and write timeouts, and new ones are not
			// detached (add fails).
			e.failed.Store(true)
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == stopMarker {
				return
			}
			e.mu.Lock()
			d := e.conns[ev.Fd]
			e.mu.Unlock()
			if d == nil {
				continue // removed after the event was reported
			}
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				d.peerGone()
			} else if ev.Events&syscall.EPOLLOUT != 0 {
				d.canWrite()
			}
		}
	}
}

// errPollerStopped is add's answer once the poller has stopped watching.
var errPollerStopped = errors.New("sse: the epoll poller has stopped")

// add watches d for the peer's close and for writability. Writability is
// edge-triggered: an event comes only after a write found the socket full,
// so a connection that keeps up costs the poller nothing.
func (e *epoller) add(d *detachedConn) error {
	e.fdMu.RLock()
	defer e.fdMu.RUnlock()
	if e.closed || e.failed.Load() {
		return errPollerStopped
	}
	e.mu.Lock()
	for {
		e.next++
		if e.next < 0 {
			e.next = 0
		}
		if _, used := e.conns[e.next]; !used {
			break
		}
	}
	d.id = e.next
	e.conns[d.id] = d
	e.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLOUT | epollET, Fd: d.id}
	var err error
	cerr := d.raw.Control(func(fd uintptr) {
		err = syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		e.mu.Lock()
		delete(e.conns, d.id)
		e.mu.Unlock()
		return fmt.Errorf("sse: epoll_ctl: %w", err)
	}
	return nil
}

// waitWritable does nothing: EPOLLOUT is watched all along, and step
// checks for a notice that came between its write and its wait.
func (e *epoller) waitWritable(*detachedConn) {}

func (e *epoller) remove(d *detachedConn) {
	e.mu.Lock()
	delete(e.conns, d.id)
	e.mu.Unlock()
	e.fdMu.RLock()
	defer e.fdMu.RUnlock()
	if e.closed {
		return
	}
	_ = d.raw.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// close stops run, waits until it has returned, and closes the
// descriptors. Only the first call does anything.
func (e *epoller) close() {
	e.fdMu.Lock()
	if e.closed {
		e.fdMu.Unlock()
		return
	}
	e.closed = true
	e.fdMu.Unlock()
	// From here on nothing else uses the descriptors, and they are still
	// open: the byte lands in the pipe even when run has returned already.
	_, _ = syscall.Write(e.pipe[1], []byte{0})
	<-e.done
	e.closeFDs()
}
