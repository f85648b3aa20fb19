// Command ssekit serves the bench contract with ssekit's Hub on net/http,
// with default options (the default MemoryStore, always on; queues of 1024
// events / 4 MiB, slow consumers disconnected, 10 s write timeout).
//
// It serves topics (serverkit.Info.Topics): GET /events?topic=a&topic=b
// subscribes to those, GET /events to "bench", the topic of a publish
// without one. GET /debug/hub times a call of Hub.Stats and of
// Hub.Subscribers, the calls that wait for the hub's lock where they take
// it. With BENCH_STOREMEM set it measures the MemoryStore's memory instead
// of serving (see storemem.go).
//
// It uses only API that the core has had since before the per-topic store,
// so that the runner can build it against an older core (ssekit@<commit>).
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/core/sse"
)

// defaultTopic is the topic of GET /events without a topic, and of
// publishes without one.
const defaultTopic = "bench"

func main() {
	if c := os.Getenv("BENCH_STOREMEM"); c != "" {
		storeMem(c)
		return
	}
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		log.Fatal(err)
	}
	events := hub.Handler(sse.HandlerOptions{Topics: func(r *http.Request) ([]string, error) {
		if r.URL.RawQuery != "" {
			if t := r.URL.Query()["topic"]; len(t) > 0 {
				return t, nil
			}
		}
		return []string{defaultTopic}, nil
	}})
	send := func(topic string, data []byte) (string, error) {
		if topic == "" {
			topic = defaultTopic
		}
		return hub.Publish(context.Background(), topic, sse.Event{Data: data})
	}
	info := serverkit.Info{
		Name: "ssekit", Delivers: true, Resume: true, Topics: true,
		Notes: "core/sse Hub, default options (replay store always on)",
	}
	extra := map[string]http.Handler{"GET /debug/hub": hubProbe(hub)}
	log.Fatal(serverkit.NetHTTPTopics(info, events, send, extra))
}

// HubProbe is GET /debug/hub?topic=T's answer.
type HubProbe struct {
	Streams       int   `json:"streams"`
	StatsNS       int64 `json:"stats_ns"`       // one Hub.Stats call
	Subscribers   int   `json:"subscribers"`    // Hub.Subscribers(T), -1 without that method
	SubscribersNS int64 `json:"subscribers_ns"` // its time
}

// hubProbe times Hub.Stats and, where the hub has it, Hub.Subscribers:
// with the hub's lock held through a fan-out they wait for it.
func hubProbe(hub *sse.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p HubProbe
		t0 := time.Now()
		st := hub.Stats()
		p.StatsNS = time.Since(t0).Nanoseconds()
		p.Streams = st.Streams
		p.Subscribers = -1
		// An older core has no Subscribers method.
		if sc, ok := any(hub).(interface{ Subscribers(string) int }); ok {
			topic := r.URL.Query().Get("topic")
			if topic == "" {
				topic = defaultTopic
			}
			t0 = time.Now()
			p.Subscribers = sc.Subscribers(topic)
			p.SubscribersNS = time.Since(t0).Nanoseconds()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
}
