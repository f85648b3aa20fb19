package sse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// Authenticate with the session cookie that EventSource sends, and give
// every user a topic of their own.
func ExampleAuth() {
	hub, _ := sse.NewHub(sse.Options{})
	sessions := map[string]string{"s3cret-alice": "alice", "s3cret-bob": "bob"} // cookie → user

	events := hub.Handler(sse.HandlerOptions{
		Auth: &sse.Auth{
			CookieName: "session",
			Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
				user, ok := sessions[token]
				if !ok {
					return sse.Principal{}, errors.New("unknown session") // 401
				}
				return sse.Principal{ID: user}, nil
			},
		},
		Topics: func(r *http.Request) ([]string, error) {
			p, _ := sse.PrincipalFrom(r.Context())
			return []string{"user/" + p.ID, "announcements"}, nil
		},
	})
	srv := httptest.NewServer(events)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	// Without the cookie, the stream is refused before it starts.
	resp, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))

	// A logged-in browser sends its cookie.
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "s3cret-alice"}})
	st, err := ssetest.Connect(context.Background(), &http.Client{Jar: jar}, srv.URL, "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	ctx := context.Background()
	_, _ = hub.Publish(ctx, "user/bob", sse.Event{Data: []byte("bob's invoice is ready")})
	_, _ = hub.Publish(ctx, "user/alice", sse.Event{Data: []byte("alice's invoice is ready")})
	_, _ = hub.Publish(ctx, "announcements", sse.Event{Data: []byte("maintenance at noon")})
	for range 2 {
		ev, _ := st.Next()
		fmt.Println(ev.Data)
	}
	// Output:
	// 401 Bearer realm="events"
	// alice's invoice is ready
	// maintenance at noon
}

// A page cannot set headers on an EventSource, and a cross-origin page may
// not have the cookie: it fetches a short-lived ticket from an
// authenticated endpoint and opens /events?ticket=...
func ExampleTickets() {
	// In a program: 32 bytes from crypto/rand, shared by every instance.
	tickets, err := sse.NewTickets([]byte("an example key of 32 bytes......"))
	if err != nil {
		panic(err)
	}
	hub, _ := sse.NewHub(sse.Options{})
	mux := http.NewServeMux()
	mux.Handle("GET /events", hub.Handler(sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: tickets.Authenticate, QueryParam: "ticket"},
		Topics: func(r *http.Request) ([]string, error) {
			p, _ := sse.PrincipalFrom(r.Context())
			return []string{"user/" + p.ID}, nil
		},
	}))
	// Behind the application's own login:
	mux.HandleFunc("POST /events/ticket", func(w http.ResponseWriter, r *http.Request) {
		ticket, _ := tickets.Issue("alice", time.Minute)
		fmt.Fprint(w, ticket)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	resp, err := http.Post(srv.URL+"/events/ticket", "", nil)
	if err != nil {
		panic(err)
	}
	var ticket string
	fmt.Fscan(resp.Body, &ticket)
	resp.Body.Close()

	streamURL := srv.URL + "/events?ticket=" + url.QueryEscape(ticket)
	st, err := ssetest.Connect(context.Background(), nil, streamURL, "")
	if err != nil {
		panic(err)
	}
	defer st.Close()
	_, _ = hub.Publish(context.Background(), "user/alice", sse.Event{Data: []byte("hello alice")})
	ev, _ := st.Next()
	fmt.Println(ev.Data)

	// Keep tickets out of access logs.
	u, _ := url.Parse("/events?ticket=" + url.QueryEscape(ticket))
	fmt.Println(sse.RedactQuery(u, "ticket"))

	// A forged ticket is refused.
	resp, err = http.Get(srv.URL + "/events?ticket=v1.forged.ticket")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// hello alice
	// /events?ticket=REDACTED
	// 401
}

// Pages of other origins may open streams when their origin is allowed;
// with AllowCredentials, new EventSource(url, {withCredentials: true})
// sends cookies too.
func ExampleCORS() {
	hub, _ := sse.NewHub(sse.Options{})
	defer hub.Shutdown(context.Background())
	events := hub.Handler(sse.HandlerOptions{
		Topics: sse.Topics("news"),
		CORS: &sse.CORS{
			AllowedOrigins:   []string{"https://app.example.com"},
			AllowCredentials: true,
		},
	})

	// The preflight a browser sends when a polyfill sets Last-Event-ID.
	req := httptest.NewRequest(http.MethodOptions, "https://events.example.com/events", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "last-event-id")
	rec := httptest.NewRecorder()
	events.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), rec.Header().Get("Access-Control-Allow-Credentials"))

	// A page of another origin is refused.
	req = httptest.NewRequest(http.MethodGet, "https://events.example.com/events", nil)
	req.Header.Set("Origin", "https://elsewhere.example.net")
	rec = httptest.NewRecorder()
	events.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Vary"), rec.Header().Get("Access-Control-Allow-Origin") == "")
	// Output:
	// 204 https://app.example.com true
	// 403 Origin true
}
