// Package check is what every app of installcheck does once its server
// listens: open a stream, publish, and receive the event.
package check

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// Listen returns a listener on a free loopback port.
func Listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	return ln
}

// Stream opens http://addr/rooms/lobby/events, publishes an event on the
// topic "lobby" and checks that it arrives; then it shuts hub down.
func Stream(name string, hub *sse.Hub, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st *ssetest.Stream
	var err error
	for range 50 { // the server may still be starting
		if st, err = ssetest.Connect(ctx, nil, "http://"+addr+"/rooms/lobby/events", ""); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fail("%s: connect: %v", name, err)
	}
	defer st.Close()
	id, err := hub.Publish(ctx, "lobby", sse.Event{Type: "chat", Data: []byte("hello from " + name)})
	if err != nil {
		fail("%s: publish: %v", name, err)
	}
	ev, err := st.Next()
	if err != nil || ev.Type != "chat" || ev.Data != "hello from "+name || ev.LastEventID != id {
		fail("%s: got %+v, %v", name, ev, err)
	}
	if err := hub.Shutdown(ctx); err != nil {
		fail("%s: shutdown: %v", name, err)
	}
	fmt.Printf("%s: received %q\n", name, ev.Data)
}

// NewHub returns a hub, or exits.
func NewHub() *sse.Hub {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		fail("NewHub: %v", err)
	}
	return hub
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
