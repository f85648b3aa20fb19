// Command echo4 serves a stream route with Echo v4.
package main

import (
	"github.com/labstack/echo/v4"
	"github.com/ssekit/ssekit/echosse"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room")))
	ln := check.Listen()
	e.Listener = ln
	go e.Start("")
	check.Stream("echo v4", hub, ln.Addr().String())
}
