// Command gosse serves the bench contract with github.com/tmaxmax/go-sse
// v0.12.0 on net/http: the default Joe provider with a FiniteReplayer of
// 4096 events (automatic IDs), the closest match to ssekit's default store.
//
// go-sse sends the response head only with the first event; this server
// flushes it when the request arrives, as an application that wants
// EventSource's "open" at once does.
package main

import (
	"log"
	"net/http"

	sse "github.com/tmaxmax/go-sse"

	"github.com/ssekit/ssekit/bench/serverkit"
)

func main() {
	replayer, err := sse.NewFiniteReplayer(4096, true)
	if err != nil {
		log.Fatal(err)
	}
	srv := &sse.Server{Provider: &sse.Joe{Replayer: replayer}}
	events := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		srv.ServeHTTP(w, r)
	})
	send := func(data []byte) error {
		m := &sse.Message{}
		m.AppendData(string(data))
		return srv.Publish(m)
	}
	info := serverkit.Info{
		Name: "gosse", Delivers: true, Resume: true,
		Notes: "tmaxmax/go-sse v0.12.0, Joe + FiniteReplayer(4096, auto IDs); head flushed on connect",
	}
	log.Fatal(serverkit.NetHTTP(info, events, send))
}
