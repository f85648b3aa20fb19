// Command echo5 serves a stream route with Echo v5: the echo4 program
// with another import path for echosse, as the adapter promises.
package main

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
	echosse "github.com/ssekit/ssekit/echosse/echo5"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	e := echo.New()
	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))
	ln := check.Listen()
	go (&http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	check.Stream("echo v5", hub, ln.Addr().String())
}
