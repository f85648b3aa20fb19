package chisse_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// One event stream route on a chi router: the topic is the route's {room}.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room")))

	srv := httptest.NewServer(r) // in a program: http.ListenAndServe(addr, r)
	defer srv.Close()
	defer hub.Shutdown(context.Background()) // before the server's shutdown

	st, err := ssetest.Connect(context.Background(), nil, srv.URL+"/rooms/lobby/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	_, _ = hub.Publish(context.Background(), "lobby", sse.Event{Type: "chat", Data: []byte("hello, lobby")})
	ev, _ := st.Next()
	fmt.Println(ev.Type, ev.Data)
	// Output: chat hello, lobby
}

// Per-user streams: the Auth middleware authenticates, and TopicsFunc
// picks the principal's own topic.
func ExampleAuth() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	auth := &sse.Auth{
		CookieName: "session",
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			return sse.Principal{ID: token}, nil // look the session up here
		},
	}
	r := chi.NewRouter()
	r.With(chisse.Auth(hub, auth)).Get("/me/events", chisse.Handler(hub, chisse.TopicsFunc(func(r *http.Request) ([]string, error) {
		p, _ := chisse.Principal(r)
		return []string{"user/" + p.ID}, nil
	})))

	srv := httptest.NewServer(r)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	jar, _ := cookiejar.New(nil) // a browser's cookies
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "ann"}})
	client := &http.Client{Jar: jar}
	st, err := ssetest.Connect(context.Background(), client, srv.URL+"/me/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	_, _ = hub.Publish(context.Background(), "user/ann", sse.Event{Data: []byte("for ann only")})
	ev, _ := st.Next()
	fmt.Println(ev.Data)
	// Output: for ann only
}
