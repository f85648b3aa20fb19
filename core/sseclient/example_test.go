package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseclient"
)

// A Go service follows an ssekit hub's stream, and reloads its state when
// the hub says it could not replay what the service missed.
func Example() {
	hub, _ := sse.NewHub(sse.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sseclient.New(srv.URL+"/events?topic=jobs", &sseclient.Options{
		Header: http.Header{"Authorization": {"Bearer secret"}},
		// The hub sends the stream's position as soon as it opens.
		OnConnect: func(sseclient.ConnectInfo) {
			hub.Publish(ctx, "jobs", sse.Event{Type: "progress", Data: []byte(`{"job":7,"done":50}`)})
			hub.Publish(ctx, "jobs", sse.Event{Type: "progress", Data: []byte(`{"job":7,"done":100}`)})
		},
	})
	for ev, err := range c.Events(ctx) {
		var reset *sseclient.ResetError
		switch {
		case errors.As(err, &reset):
			fmt.Println("missed events:", reset.Reason) // reload the jobs from the API
			continue
		case err != nil:
			log.Fatal(err)
		}
		fmt.Println(ev.Type, ev.Data)
		if strings.Contains(ev.Data, `"done":100`) {
			break
		}
	}
	// Output:
	// progress {"job":7,"done":50}
	// progress {"job":7,"done":100}
}

// Events yields a *ResetError for the hub's reset event: here, the client
// resumes from an ID the hub does not know.
func ExampleClient_Events_reset() {
	hub, _ := sse.NewHub(sse.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.Topics("news")}))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	c := sseclient.New(srv.URL, &sseclient.Options{LastEventID: "saved-by-an-old-run"})
	for _, err := range c.Events(context.Background()) {
		var reset *sseclient.ResetError
		if errors.As(err, &reset) {
			fmt.Println(reset.Reason)
			fmt.Println(err)
		}
		break
	}
	// Output:
	// unknown-id
	// sseclient: stream reset (unknown-id): events may have been missed
}

// Run suits a consumer that runs for the life of the process. The hooks
// say what happens to the connection.
func ExampleClient_Run() {
	streams := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streams++
		switch streams {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "retry: 10\nid: 1\ndata: first\n\n") // then the stream ends
		case 2:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 2\ndata: second\n\n")
		default:
			w.WriteHeader(http.StatusNoContent) // stop for good
		}
	}))
	defer srv.Close()

	c := sseclient.New(srv.URL, &sseclient.Options{
		InitialDelay: time.Millisecond,
		OnConnect:    func(ci sseclient.ConnectInfo) { fmt.Printf("connected, Last-Event-ID %q\n", ci.LastEventID) },
		OnDisconnect: func(di sseclient.DisconnectInfo) { fmt.Println("disconnected:", di.Err) },
		OnRetry:      func(ri sseclient.RetryInfo) { fmt.Println("reconnecting, retry", ri.Retry) },
	})
	err := c.Run(context.Background(), func(ev sseclient.Event) error {
		fmt.Println("event", ev.LastEventID, ev.Data)
		return nil
	}, nil)
	fmt.Println("Run:", err)
	// Output:
	// connected, Last-Event-ID ""
	// event 1 first
	// disconnected: EOF
	// reconnecting, retry 1
	// connected, Last-Event-ID "1"
	// event 2 second
	// disconnected: EOF
	// reconnecting, retry 2
	// Run: <nil>
}

// Do reads the answer of a streaming API to a POST, such as the tokens of
// a completion, once.
func ExampleDo() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range []string{"Hel", "lo", "!"} {
			fmt.Fprintf(w, "event: token\ndata: {\"text\":%q}\n\n", tok)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/complete", strings.NewReader(`{"prompt":"greet"}`))
	req.Header.Set("Content-Type", "application/json")
	for ev, err := range sseclient.Do(req, &sseclient.Options{ReadTimeout: 30 * time.Second}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Type, ev.Data)
	}
	// Output:
	// token {"text":"Hel"}
	// token {"text":"lo"}
	// token {"text":"!"}
	// message [DONE]
}

// Prepare gives every request, reconnections included, a fresh ticket.
func ExampleOptions_prepare() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: ticket %s\n\n", r.URL.Query().Get("ticket"))
	}))
	defer srv.Close()

	n := 0
	mint := func() string { n++; return fmt.Sprint("t", n) } // ask the auth service instead
	c := sseclient.New(srv.URL+"/events", &sseclient.Options{
		InitialDelay: time.Millisecond,
		Prepare: func(r *http.Request) error {
			q := r.URL.Query()
			q.Set("ticket", mint())
			r.URL.RawQuery = q.Encode()
			return nil
		},
	})
	got := 0
	for ev, err := range c.Events(context.Background()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Data)
		if got++; got == 3 {
			break
		}
	}
	// Output:
	// ticket t1
	// ticket t2
	// ticket t3
}

func ExampleParser() {
	p := sseclient.NewParser(strings.NewReader(": hi\nretry: 2000\n\nid: 1\nevent: add\ndata: a\ndata: b\n\nid: 2\n\n"))
	p.MaxEventSize = 1 << 10
	for {
		ev, err := p.Next()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%s %q %s\n", ev.Type, ev.Data, ev.LastEventID)
	}
	r, _ := p.Retry()
	fmt.Println("retry", r, "last ID", p.LastEventID())
	// Output:
	// add "a\nb" 1
	// EOF
	// retry 2s last ID 2
}

func ExampleParse() {
	events, _ := sseclient.Parse([]byte("data: one\r\n\r\ndata: two\rdata: lines\r\r"))
	fmt.Printf("%q\n", events)
	// Output:
	// [{"message" "one" ""} {"message" "two\nlines" ""}]
}
