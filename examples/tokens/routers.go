package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	fiber2 "github.com/gofiber/fiber/v2"
	fiber3 "github.com/gofiber/fiber/v3"
	echo4 "github.com/labstack/echo/v4"
	echo5 "github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/echosse"
	echosse5 "github.com/ssekit/ssekit/echosse/echo5"
	fibersse2 "github.com/ssekit/ssekit/fibersse"
	fibersse3 "github.com/ssekit/ssekit/fibersse/fiber3"
	"github.com/ssekit/ssekit/ginsse"
)

// indexHTML is the page: it posts a prompt and reads the answer's stream
// with fetch and a ReadableStream.
//
//go:embed index.html
var indexHTML []byte

// maxBody bounds the request bodies.
const maxBody = 64 << 10

// A server serves the example with one router.
type server struct {
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// routers builds the server of each router that -router names. Each
// serves the page at / and the token stream at POST /tokens.
var routers = map[string]func(hub *sse.Hub, m *Model) server{
	"nethttp": nethttpServer,
	"chi":     chiServer,
	"gin":     ginServer,
	"echo":    echoServer,
	"echo5":   echo5Server,
	"fiber":   fiberServer,
	"fiber2":  fiber2Server,
}

// routerNames returns the names routers knows, sorted.
func routerNames() []string {
	names := make([]string, 0, len(routers))
	for name := range routers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// httpServer serves h with net/http.
func httpServer(h http.Handler) server {
	srv := &http.Server{Handler: http.MaxBytesHandler(h, maxBody), ReadHeaderTimeout: 5 * time.Second}
	return server{serve: srv.Serve, shutdown: srv.Shutdown}
}

// servePage answers with the page.
func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(indexHTML)
}

func nethttpServer(hub *sse.Hub, m *Model) server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var q request
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = hub.Stream(w, r, answer(m, q.Prompt))
	})
	return httpServer(mux)
}

func chiServer(hub *sse.Hub, m *Model) server {
	r := chi.NewRouter()
	r.Get("/", servePage)
	r.Post("/tokens", func(w http.ResponseWriter, r *http.Request) {
		var q request
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = hub.Stream(w, r, answer(m, q.Prompt))
	})
	return httpServer(r)
}

func ginServer(hub *sse.Hub, m *Model) server {
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/", gin.WrapF(servePage))
	r.POST("/tokens", func(c *gin.Context) {
		var q request
		if err := c.BindJSON(&q); err != nil {
			return // BindJSON answered 400
		}
		_ = ginsse.Stream(hub, c, answer(m, q.Prompt))
	})
	return httpServer(r)
}

func echoServer(hub *sse.Hub, m *Model) server {
	e := echo4.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", echo4.WrapHandler(http.HandlerFunc(servePage)))
	e.POST("/tokens", func(c echo4.Context) error {
		var q request
		if err := c.Bind(&q); err != nil {
			return err
		}
		return echosse.Stream(hub, c, answer(m, q.Prompt))
	})
	return httpServer(e)
}

func echo5Server(hub *sse.Hub, m *Model) server {
	e := echo5.New()
	e.GET("/", echo5.WrapHandler(http.HandlerFunc(servePage)))
	e.POST("/tokens", func(c *echo5.Context) error {
		var q request
		if err := c.Bind(&q); err != nil {
			return err
		}
		return echosse5.Stream(hub, c, answer(m, q.Prompt))
	})
	return httpServer(e)
}

func fiberServer(hub *sse.Hub, m *Model) server {
	// An IdleTimeout keeps Shutdown from waiting on idle connections.
	app := fiber3.New(fiber3.Config{IdleTimeout: time.Minute, BodyLimit: maxBody})
	app.Get("/", func(c fiber3.Ctx) error { return c.Type("html").Send(indexHTML) })
	app.Post("/tokens", func(c fiber3.Ctx) error {
		var q request
		if err := c.Bind().Body(&q); err != nil { // copies into q
			return fiber3.NewError(fiber3.StatusBadRequest, err.Error())
		}
		return fibersse3.Stream(hub, c, answer(m, q.Prompt))
	})
	return server{
		serve: func(ln net.Listener) error {
			return app.Listener(ln, fiber3.ListenConfig{DisableStartupMessage: true})
		},
		shutdown: app.ShutdownWithContext,
	}
}

func fiber2Server(hub *sse.Hub, m *Model) server {
	app := fiber2.New(fiber2.Config{IdleTimeout: time.Minute, BodyLimit: maxBody, DisableStartupMessage: true})
	app.Get("/", func(c *fiber2.Ctx) error { return c.Type("html").Send(indexHTML) })
	app.Post("/tokens", func(c *fiber2.Ctx) error {
		var q request
		if err := c.BodyParser(&q); err != nil { // copies into q
			return fiber2.NewError(fiber2.StatusBadRequest, err.Error())
		}
		return fibersse2.Stream(hub, c, answer(m, q.Prompt))
	})
	return server{serve: app.Listener, shutdown: app.ShutdownWithContext}
}
