// Command bare is the memory floor: its event handler sends the response
// head and then only waits for the client to go. Publishing reaches nobody.
package main

import (
	"log"
	"net/http"

	"github.com/ssekit/ssekit/bench/serverkit"
)

func events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

func main() {
	info := serverkit.Info{Name: "bare", Notes: "net/http handler that flushes the head and blocks"}
	log.Fatal(serverkit.NetHTTP(info, http.HandlerFunc(events), func([]byte) error { return nil }))
}
