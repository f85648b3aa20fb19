// Command echosse-v5 serves the bench contract with ssekit's Echo v5
// adapter (echosse.Handler of github.com/ssekit/ssekit/echosse/echo5) on an
// Echo v5 router: the same Hub, with the same default options, as the
// ssekit server.
package main

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/core/sse"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
)

func main() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		log.Fatal(err)
	}
	send := func(data []byte) error {
		_, err := hub.Publish(context.Background(), "bench", sse.Event{Data: data})
		return err
	}
	e := echo.New()
	e.GET("/events", echosse.Handler(hub, echosse.Topics("bench")))
	e.POST("/publish", echo.WrapHandler(serverkit.PublishHandler(send)))
	e.GET("/debug/goroutines", echo.WrapHandler(serverkit.GoroutinesHandler()))
	e.GET("/debug/info", echo.WrapHandler(serverkit.InfoHandler(serverkit.Info{
		Name: "echosse-v5", Delivers: true, Resume: true,
		Notes: "ssekit's Echo v5 adapter (echosse/echo5) on Echo v5.4.4 (echo.New, no middleware), Hub with default options",
	})))
	srv := &http.Server{Addr: serverkit.Addr(), Handler: e, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
