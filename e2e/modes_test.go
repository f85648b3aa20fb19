package e2e

import (
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// streamMode is how a test's hub serves HTTP/1.1 streams: attached (the
// net/http handler goroutine writes each stream) or detached
// (HandlerOptions.Detach: the connection is hijacked and the hub's shared
// workers write to it). Clients must not see a difference, so the tests of
// real clients run in both.
type streamMode struct {
	name   string
	detach bool // HandlerOptions.Detach
}

var (
	attached = streamMode{name: "Attached"}
	detached = streamMode{name: "Detached", detach: true}
	// streamModes are the modes forEachMode runs a test in.
	streamModes = []streamMode{attached, detached}
)

// forEachMode runs test in each of streamModes, as subtests named after
// them.
func forEachMode(t *testing.T, test func(t *testing.T, mode streamMode)) {
	t.Helper()
	for _, mode := range streamModes {
		t.Run(mode.name, func(t *testing.T) { test(t, mode) })
	}
}

// checkStreamsDetached checks that hub has open streams and that, as
// detached says, all of them or none are on detached connections. The
// handler hands a connection over just after it has written the opening
// frame and replay, which the client may already have read, so a stream
// is given up to two seconds to be counted as detached.
func checkStreamsDetached(t *testing.T, hub *sse.Hub, detached bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := hub.Stats()
		ok := st.Streams > 0 && st.Detached == 0
		if detached {
			ok = st.Streams > 0 && st.Detached == st.Streams
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			want := "none of them detached"
			if detached {
				want = "all of them detached"
			}
			t.Errorf("hub.Stats() counts %d streams, %d of them detached; want open streams, %s", st.Streams, st.Detached, want)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
