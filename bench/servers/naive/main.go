// Command naive is the throughput ceiling: the publisher encodes each event
// once and then writes and flushes it to every subscriber itself, one after
// the other, under one lock. Nothing is queued and nothing is copied per
// subscriber; but a subscriber that stops reading stops everyone.
package main

import (
	"log"
	"net/http"
	"sync"

	"github.com/ssekit/ssekit/bench/serverkit"
)

type client struct {
	w http.ResponseWriter
	f http.Flusher
}

var (
	mu      sync.Mutex
	clients []*client
)

func events(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "cannot flush", http.StatusInternalServerError)
		return
	}
	c := &client{w: w, f: f}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	mu.Lock()
	w.WriteHeader(http.StatusOK)
	f.Flush()
	clients = append(clients, c)
	mu.Unlock()
	<-r.Context().Done()
	// The publisher writes to w only under mu, so after this the handler
	// may return.
	mu.Lock()
	for i, o := range clients {
		if o == c {
			last := len(clients) - 1
			clients[i] = clients[last]
			clients[last] = nil
			clients = clients[:last]
			break
		}
	}
	mu.Unlock()
}

func send(data []byte) error {
	frame := make([]byte, 0, len(data)+8)
	frame = append(frame, "data: "...)
	frame = append(frame, data...)
	frame = append(frame, "\n\n"...)
	mu.Lock()
	defer mu.Unlock()
	for _, c := range clients {
		_, _ = c.w.Write(frame) // a gone client is removed by its handler
		c.f.Flush()
	}
	return nil
}

func main() {
	info := serverkit.Info{Name: "naive", Delivers: true, Notes: "encode once, write+flush each subscriber in the publisher"}
	log.Fatal(serverkit.NetHTTP(info, http.HandlerFunc(events), send))
}
