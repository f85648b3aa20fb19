package sse

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// fdOpen reports whether fd is an open descriptor.
func fdOpen(fd int) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	return errno == 0
}

// tcpConn returns the server side of a loopback TCP connection, and its
// descriptor. Both ends are closed at the end of the test.
func tcpConn(t *testing.T) (*detachedConn, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	raw, ok := rawConn(server)
	if !ok {
		t.Fatal("no raw conn")
	}
	fd := -1
	_ = raw.Control(func(f uintptr) { fd = int(f) })
	return &detachedConn{raw: raw, conn: server}, fd
}

// strangers stand in for the files that the rest of a program opens, and
// that the kernel gives the lowest free descriptor numbers: after a
// poller's descriptors are closed, strangers take their numbers, and the
// test checks that the poller neither writes to nor closes them, nor
// changes another epoll instance's set.
type strangers struct {
	t     *testing.T
	file  *os.File // a file whose descriptor is duplicated onto taken numbers
	ep    int      // an epoll instance watching sock, likewise
	sock  int
	other int   // a socket ep does not watch
	taken []int // the numbers taken
}

func newStrangers(t *testing.T, sock, other int) *strangers {
	f, err := os.CreateTemp(t.TempDir(), "stranger")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 12345}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, sock, &ev); err != nil {
		t.Fatal(err)
	}
	st := &strangers{t: t, file: f, ep: ep, sock: sock, other: other}
	t.Cleanup(func() {
		for _, fd := range st.taken {
			if fdOpen(fd) {
				syscall.Close(fd)
			}
		}
		syscall.Close(ep)
		f.Close()
	})
	return st
}

// take makes the stranger file (or, with epoll, the stranger epoll
// instance) hold the number fd, if it is free, as the next open of the
// program would.
func (st *strangers) take(fd int, epoll bool) {
	if fdOpen(fd) {
		return
	}
	src := int(st.file.Fd())
	if epoll {
		src = st.ep
	}
	if err := syscall.Dup3(src, fd, syscall.O_CLOEXEC); err != nil {
		st.t.Fatalf("dup3 onto %d: %v", fd, err)
	}
	st.taken = append(st.taken, fd)
}

// check fails the test if a stranger was closed or written to, or if the
// stranger epoll instance stopped watching its socket.
func (st *strangers) check(when string) {
	st.t.Helper()
	for _, fd := range st.taken {
		if !fdOpen(fd) {
			st.t.Errorf("%s: the poller closed descriptor %d, which belonged to another file by then", when, fd)
		}
	}
	if fi, err := st.file.Stat(); err != nil || fi.Size() != 0 {
		st.t.Errorf("%s: the poller wrote %d bytes (%v) into another file that had its pipe's descriptor number", when, fi.Size(), err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 12345}
	if err := syscall.EpollCtl(st.ep, syscall.EPOLL_CTL_MOD, st.sock, &ev); err != nil {
		st.t.Errorf("%s: another epoll instance no longer watches its socket (%v): the poller changed it through a reused descriptor number", when, err)
	}
	if err := syscall.EpollCtl(st.ep, syscall.EPOLL_CTL_MOD, st.other, &ev); err != syscall.ENOENT {
		st.t.Errorf("%s: another epoll instance watches a socket the poller was given (%v): the poller changed it through a reused descriptor number", when, err)
	}
}

// TestEpollerFailure: when epoll_wait fails, the poller stops watching,
// but its descriptors stay its own until close: remove and close, called
// from other goroutines after the failure, must not write to, close or
// change files that have taken those numbers since. And close closes them
// once: after it, remove and close do nothing.
func TestEpollerFailure(t *testing.T) {
	fail := make(chan struct{})
	saved := epollWait
	epollWait = func(epfd int, events []syscall.EpollEvent, msec int) (int, error) {
		select {
		case <-fail:
			return 0, syscall.EINVAL
		default:
			return syscall.EpollWait(epfd, events, 5)
		}
	}
	defer func() { epollWait = saved }()

	e, err := newEpoller()
	if err != nil {
		t.Fatal(err)
	}
	d, sock := tcpConn(t)
	if err := e.add(d); err != nil {
		t.Fatal(err)
	}
	d2, sock2 := tcpConn(t)
	st := newStrangers(t, sock, sock2)
	st2 := newStrangers(t, sock, sock2)
	pipeR, pipeW, epfd := e.pipe[0], e.pipe[1], e.epfd

	close(fail)
	// Give run the time to fail, and to close what it would close.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end) && fdOpen(epfd); {
		time.Sleep(time.Millisecond)
	}
	// The program opens files, which get the lowest free numbers.
	st.take(pipeR, false)
	st.take(pipeW, false)
	st.take(epfd, true)
	if err := e.add(d2); err == nil {
		t.Error("a poller whose epoll_wait failed took a new connection")
		e.remove(d2)
	}
	e.remove(d)
	e.close()
	st.check("after a failure")

	// close closed the poller's descriptors, once.
	for _, fd := range []int{pipeR, pipeW, epfd} {
		if fdOpen(fd) && !contains(st.taken, fd) {
			t.Errorf("descriptor %d is still open after close", fd)
		}
	}
	st2.take(pipeR, false)
	st2.take(pipeW, false)
	st2.take(epfd, true)
	e.remove(d)
	e.close()
	st2.check("after close")
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
