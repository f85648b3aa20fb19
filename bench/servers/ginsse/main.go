// Command ginsse serves the bench contract with ssekit's gin adapter
// (ginsse.Handler) on a gin v1.12.0 engine: the same Hub, with the same
// default options, as the ssekit server.
package main

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/ginsse"
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
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("bench")))
	r.POST("/publish", gin.WrapH(serverkit.PublishHandler(send)))
	r.GET("/debug/goroutines", gin.WrapH(serverkit.GoroutinesHandler()))
	r.GET("/debug/info", gin.WrapH(serverkit.InfoHandler(serverkit.Info{
		Name: "ginsse", Delivers: true, Resume: true,
		Notes: "ssekit's gin adapter on gin v1.12.0 (gin.New + Recovery), Hub with default options",
	})))
	srv := &http.Server{Addr: serverkit.Addr(), Handler: r, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
