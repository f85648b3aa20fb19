package sse_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// A whole event stream route on net/http: one hub, one handler, Publish.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", hub.Handler(sse.HandlerOptions{Topics: sse.Topics("news")}))

	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe(addr, mux)
	defer srv.Close()
	defer hub.Shutdown(context.Background()) // before the server's shutdown

	st, err := ssetest.Connect(context.Background(), nil, srv.URL+"/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	_, _ = hub.Publish(context.Background(), "news", sse.Event{Type: "headline", Data: []byte("ssekit ships")})
	ev, _ := st.Next()
	fmt.Println(ev.Type, ev.Data)
	// Output: headline ssekit ships
}

func ExampleAppendEvent() {
	buf, err := sse.AppendEvent(nil, sse.Event{ID: "42", Type: "update", Data: []byte("line one\nline two")})
	if err != nil {
		panic(err)
	}
	fmt.Print(string(buf))
	// Output:
	// id: 42
	// event: update
	// data: line one
	// data: line two
}

func ExampleAppendEvent_invalid() {
	_, err := sse.AppendEvent(nil, sse.Event{ID: "1\n2"})
	fmt.Println(err)
	// Output: sse: invalid event id: contains LF
}

// Topics can come from the request, and a request can be turned away before
// any stream byte.
func ExampleHandlerOptions() {
	hub, _ := sse.NewHub(sse.Options{})
	defer hub.Shutdown(context.Background())
	h := hub.Handler(sse.HandlerOptions{
		Topics: func(r *http.Request) ([]string, error) {
			user := r.URL.Query().Get("user")
			switch {
			case user == "":
				// Not 503 or 429: browsers never retry those.
				return nil, sse.Refuse(http.StatusUnauthorized, "log in first")
			case user == "busy":
				return nil, sse.TryLater(5 * time.Second) // 200, retry: 5000, end
			}
			return []string{"user/" + user, "announcements"}, nil
		},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/events", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 401 log in first
}

// After Publish, the Store holds the event, with or without subscribers.
func ExampleHub_Publish() {
	hub, _ := sse.NewHub(sse.Options{Store: mustStore(sse.NewMemoryStore(sse.MemoryStoreOptions{Epoch: "demo"}))})
	id, err := hub.Publish(context.Background(), "orders", sse.Event{Type: "created", Data: []byte(`{"id":7}`)})
	fmt.Println(id, err)
	entries, _ := hub.Store().After(context.Background(), []string{"orders"}, []uint64{0}, 10)
	fmt.Println(len(entries), entries[0].Event.Type)
	// Output:
	// demo-1 <nil>
	// 1 created
}

func mustStore(s *sse.MemoryStore, err error) *sse.MemoryStore {
	if err != nil {
		panic(err)
	}
	return s
}

// Shut the hub down before the server: open streams end with a retry hint,
// so browsers come back (to another instance, in a rolling deploy).
func ExampleHub_Shutdown() {
	hub, _ := sse.NewHub(sse.Options{})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: hub.Handler(sse.HandlerOptions{})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(hub.Shutdown(ctx), srv.Shutdown(ctx))
	// Output: <nil> <nil>
}
