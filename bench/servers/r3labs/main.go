// Command r3labs serves the bench contract with github.com/r3labs/sse/v2 on
// net/http: one stream, default buffer sizes. Its replay log (AutoReplay)
// is unbounded and replays the whole log to every client that connects
// without Last-Event-ID, so it is on only with BENCH_REPLAY=1.
package main

import (
	"log"
	"net/http"

	"github.com/r3labs/sse/v2"
	"github.com/ssekit/ssekit/bench/serverkit"
)

func main() {
	srv := sse.New()
	srv.AutoReplay = serverkit.ReplayEnabled()
	srv.CreateStream("bench")
	events := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// r3labs picks the stream from the query.
		u := *r.URL
		u.RawQuery = "stream=bench"
		r2 := r.WithContext(r.Context())
		r2.URL = &u
		srv.ServeHTTP(w, r2)
	})
	send := func(data []byte) error {
		srv.Publish("bench", &sse.Event{Data: data})
		return nil
	}
	info := serverkit.Info{
		Name: "r3labs", Delivers: true, Resume: true,
		Notes: "r3labs/sse/v2 v2.10.0, defaults; AutoReplay only with BENCH_REPLAY=1",
	}
	log.Fatal(serverkit.NetHTTP(info, events, send))
}
