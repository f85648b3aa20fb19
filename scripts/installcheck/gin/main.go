// Command gin serves a stream route with gin.
package main

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/ginsse"

	"example.com/installcheck/check"
)

func main() {
	gin.SetMode(gin.ReleaseMode)
	hub := check.NewHub()
	r := gin.New()
	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room")))
	ln := check.Listen()
	go (&http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	check.Stream("gin", hub, ln.Addr().String())
}
