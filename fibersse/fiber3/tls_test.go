package fibersse_test

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestTLS: streams work over TLS, and a client that leaves is released
// within one heartbeat interval.
func TestTLS(t *testing.T) {
	// Borrow httptest's certificate and a client that trusts it.
	donor := httptest.NewUnstartedServer(nil)
	donor.StartTLS()
	cert, client := donor.TLS.Certificates, donor.Client()
	donor.Close()

	const interval = 500 * time.Millisecond
	hub := newHub(t, sse.Options{HeartbeatInterval: interval})
	app := fiber.New()
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: cert})
	go func() { _ = app.Listener(tln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() {
		_ = hub.Shutdown(t.Context())
		client.CloseIdleConnections()
		_ = app.ShutdownWithTimeout(5 * time.Second)
	})
	url := "https://" + ln.Addr().String() + "/events"
	for range 3 {
		st, err := tryConnect(t, client, url, "")
		if err != nil {
			t.Fatal(err)
		}
		id := testkit.Publish(t, hub, "t", "secret")
		if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
		left := time.Now()
		st.Close()
		testkit.Eventually(t, "the stream to be released", func() bool { return hub.Stats().Streams == 0 })
		if d := time.Since(left); d > interval {
			t.Errorf("released %v after the client left, want within %v", d, interval)
		}
	}
}
