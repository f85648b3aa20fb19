package ginsse_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
)

// A chat room's events on a route with the room in its path.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))

	srv := httptest.NewServer(r)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer hub.Shutdown(ctx) // ends open streams, so that srv.Close does not wait for them

	// When Connect returns, the client is subscribed.
	st, err := ssetest.Connect(ctx, nil, srv.URL+"/rooms/lobby/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if _, err := hub.Publish(ctx, "lobby", sse.Event{Type: "chat", Data: []byte(`{"text":"hi"}`)}); err != nil {
		panic(err)
	}
	ev, err := st.Next()
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.Data)
	// Output: chat {"text":"hi"}
}

// Per-user streams: the Auth middleware authenticates, and the topic is the
// principal's own.
func ExampleAuth() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	auth := &sse.Auth{
		CookieName: "session",
		Authenticate: func(ctx context.Context, token string) (sse.Principal, error) {
			return sse.Principal{ID: "ann"}, nil // look the session up here
		},
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/me/events", ginsse.Auth(hub, auth), ginsse.Handler(hub,
		ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
			p, _ := ginsse.Principal(c)
			return []string{"user/" + p.ID}, nil
		})))
	log.Fatal(r.Run(":8080"))
}
