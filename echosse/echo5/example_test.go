package echosse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
)

// One event stream route on Echo: the room comes from the path.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	e := echo.New()
	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))

	srv := httptest.NewServer(e) // in a program: http.ListenAndServe(addr, e)
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

// The Auth middleware authenticates; a TopicsFunc gives each user their
// own topic.
func ExampleAuth() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	auth := &sse.Auth{
		CookieName: "session",
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			if token != "secret-of-ann" { // look the session up here
				return sse.Principal{}, errors.New("unknown session")
			}
			return sse.Principal{ID: "ann"}, nil
		},
	}
	e := echo.New()
	e.GET("/events", echosse.Handler(hub,
		echosse.TopicsFunc(func(c *echo.Context) ([]string, error) {
			p, _ := echosse.Principal(c)
			return []string{"user/" + p.ID}, nil
		}),
	), echosse.Auth(hub, auth))

	srv := httptest.NewServer(e)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	browser := &http.Client{Transport: cookieTransport("session=secret-of-ann")}
	st, err := ssetest.Connect(context.Background(), browser, srv.URL+"/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	_, _ = hub.Publish(context.Background(), "user/ann", sse.Event{Data: []byte("for ann only")})
	ev, _ := st.Next()
	fmt.Println(ev.Data)

	_, err = ssetest.Connect(context.Background(), nil, srv.URL+"/events", "")
	fmt.Println(err)
	// Output:
	// for ann only
	// ssetest: status 401 Unauthorized: "missing token\n"
}

// cookieTransport sends a cookie with every request, as a browser would.
type cookieTransport string

func (c cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Cookie", string(c))
	return http.DefaultTransport.RoundTrip(r)
}
