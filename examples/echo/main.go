// Command echo serves ssekit event streams from an Echo (v5) router.
//
//	go run ./examples/echo
//	curl -N 'http://127.0.0.1:8080/events?topic=news'          # a tick every second
//	curl -X POST 'http://127.0.0.1:8080/publish?topic=news&data=hello'
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/echosse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("listening on http://%s/events?topic=news\n", ln.Addr())
	if err := run(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// run serves on ln until ctx is done, then shuts down gracefully.
func run(ctx context.Context, ln net.Listener) error {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		return err
	}
	e := echo.New()
	e.GET("/events", echosse.Handler(hub, echosse.TopicsFromQuery("topic")))
	e.POST("/publish", func(c *echo.Context) error {
		id, err := hub.Publish(c.Request().Context(), c.QueryParam("topic"), sse.Event{Data: []byte(c.QueryParam("data"))})
		if err != nil {
			return c.String(http.StatusBadRequest, err.Error()+"\n")
		}
		return c.String(http.StatusOK, id+"\n")
	})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_, _ = hub.Publish(ctx, "news", sse.Event{Data: []byte(now.Format(time.TimeOnly))})
			}
		}
	}()

	// Start serves until ctx is done, then shuts the server down. Its first
	// step ends the streams, which the server's shutdown would wait for.
	sc := echo.StartConfig{Listener: ln, HideBanner: true, HidePort: true, GracefulTimeout: 5 * time.Second,
		BeforeServeFunc: func(s *http.Server) error {
			s.RegisterOnShutdown(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hub.Shutdown(sctx)
			})
			return nil
		}}
	return sc.Start(ctx, e)
}
