// Command gin serves the bench contract with gin v1.12.0's built-in SSE
// support (c.Stream and c.SSEvent). Gin has no broker, so this server has
// the usual one: a buffered channel of 1024 events per client, filled by
// the publisher without blocking; when a client's channel is full, that
// client misses the event (counted as a loss by the runner).
package main

import (
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/bench/serverkit"
)

type broker struct {
	mu      sync.RWMutex
	clients map[chan []byte]struct{}
}

func (b *broker) add(ch chan []byte) {
	b.mu.Lock()
	b.clients[ch] = struct{}{}
	b.mu.Unlock()
}

func (b *broker) remove(ch chan []byte) {
	b.mu.Lock()
	delete(b.clients, ch)
	b.mu.Unlock()
}

func (b *broker) send(data []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for ch := range b.clients {
		select {
		case ch <- data:
		default: // this client is too far behind: it misses the event
		}
	}
	return nil
}

func main() {
	gin.SetMode(gin.ReleaseMode)
	b := &broker{clients: make(map[chan []byte]struct{})}
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/events", func(c *gin.Context) {
		ch := make(chan []byte, 1024)
		b.add(ch)
		defer b.remove(ch)
		c.Header("Content-Type", "text/event-stream")
		c.Header("Cache-Control", "no-cache")
		c.Status(http.StatusOK)
		c.Writer.WriteHeaderNow()
		c.Writer.Flush()
		ctx := c.Request.Context()
		c.Stream(func(io.Writer) bool {
			select {
			case data := <-ch:
				c.SSEvent("message", data)
				return true
			case <-ctx.Done():
				return false
			}
		})
	})
	r.POST("/publish", gin.WrapH(serverkit.PublishHandler(b.send)))
	r.GET("/debug/goroutines", gin.WrapH(serverkit.GoroutinesHandler()))
	r.GET("/debug/info", gin.WrapH(serverkit.InfoHandler(serverkit.Info{
		Name: "gin", Delivers: true,
		Notes: "gin v1.12.0 c.Stream + c.SSEvent; per-client chan of 1024, full = event dropped",
	})))
	srv := &http.Server{Addr: serverkit.Addr(), Handler: r, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
