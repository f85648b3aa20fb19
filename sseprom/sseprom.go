// Package sseprom exports an ssekit hub's metrics to Prometheus.
//
//	m := sseprom.New(prometheus.DefaultRegisterer)
//	hub, err := sse.NewHub(sse.Options{Observer: m.Observer()})
//	m.Watch(hub) // gauges from hub.Stats() at every scrape
//
// Metrics (all prefixed "ssekit_"):
//
//	streams_opened_total                 counter
//	streams_closed_total{reason}         counter: client gone, slow consumer, write timeout, ...
//	refused_total{reason,status}         counter: unauthenticated, forbidden, stream limit, ...
//	events_published_total{topic}        counter (use TopicLabel to bound the label's values)
//	deliveries_total                     counter: events queued for streams
//	dropped_total                        counter: streams that lost queued events (DropOldest)
//	evicted_total                        counter: streams ended as slow consumers
//	replays_total{outcome,reason}        counter: hit, or reset with unknown-id / evicted / unavailable
//	replayed_events_total                counter
//	events_sent_per_stream               histogram, observed when a stream ends
//	broadcast_up                         gauge: 1 while a shared store delivers, 0 during an outage
//	open_streams, detached_streams,      gauges, from hub.Stats() (Watch)
//	queued_bytes
package sseprom

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssekit/ssekit/core/sse"
)

// Metrics holds the collectors. Make one with New.
type Metrics struct {
	reg prometheus.Registerer

	// TopicLabel maps a topic to the value of the "topic" label. Topics
	// such as "user/42" would make one time series per user: return a
	// category ("user") instead. Default: the topic itself.
	TopicLabel func(topic string) string

	opened      prometheus.Counter
	closed      *prometheus.CounterVec
	refused     *prometheus.CounterVec
	published   *prometheus.CounterVec
	deliveries  prometheus.Counter
	dropped     prometheus.Counter
	evicted     prometheus.Counter
	replays     *prometheus.CounterVec
	replayed    prometheus.Counter
	sent        prometheus.Histogram
	broadcastUp prometheus.Gauge
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg:         reg,
		opened:      prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_streams_opened_total", Help: "Event streams opened."}),
		closed:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_streams_closed_total", Help: "Event streams closed, by reason."}, []string{"reason"}),
		refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_refused_total", Help: "Stream requests answered without a stream."}, []string{"reason", "status"}),
		published:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_events_published_total", Help: "Events published, by topic."}, []string{"topic"}),
		deliveries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_deliveries_total", Help: "Events queued for streams."}),
		dropped:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_dropped_total", Help: "Streams that lost queued events to make room (DropOldest)."}),
		evicted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_evicted_total", Help: "Streams ended because their queue was full."}),
		replays:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_replays_total", Help: "Resumed streams, by outcome."}, []string{"outcome", "reason"}),
		replayed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_replayed_events_total", Help: "Events sent by replays."}),
		sent:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ssekit_events_sent_per_stream", Help: "Events a stream sent in its life.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		broadcastUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ssekit_broadcast_up", Help: "1 while a shared store delivers events, 0 during an outage."}),
	}
	m.broadcastUp.Set(1)
	reg.MustRegister(m.opened, m.closed, m.refused, m.published, m.deliveries, m.dropped,
		m.evicted, m.replays, m.replayed, m.sent, m.broadcastUp)
	return m
}

// Observer returns the sse.Observer that feeds the metrics; set it as
// sse.Options.Observer.
func (m *Metrics) Observer() sse.Observer {
	return sse.Observer{
		StreamOpened: func(sse.StreamInfo) { m.opened.Inc() },
		StreamClosed: func(_ sse.StreamInfo, r sse.EndReason, sent int) {
			m.closed.WithLabelValues(r.String()).Inc()
			m.sent.Observe(float64(sent))
		},
		Refused: func(_ *http.Request, r sse.RefusalReason, status int) {
			m.refused.WithLabelValues(r.String(), strconv.Itoa(status)).Inc()
		},
		Published: func(topic string, queued, dropped, evicted int) {
			label := topic
			if m.TopicLabel != nil {
				label = m.TopicLabel(topic)
			}
			m.published.WithLabelValues(label).Inc()
			m.deliveries.Add(float64(queued))
			m.dropped.Add(float64(dropped))
			m.evicted.Add(float64(evicted))
		},
		Replayed: func(o sse.ReplayOutcome, events int, reason string) {
			m.replays.WithLabelValues(o.String(), reason).Inc()
			m.replayed.Add(float64(events))
		},
		BroadcastState: func(err error) {
			if err != nil {
				m.broadcastUp.Set(0)
			} else {
				m.broadcastUp.Set(1)
			}
		},
	}
}

// Watch registers gauges that read hub.Stats() at every scrape:
// ssekit_open_streams, ssekit_detached_streams (of those, the ones on
// detached connections) and ssekit_queued_bytes, labelled with name when
// one process runs several hubs (name may be empty).
func (m *Metrics) Watch(hub *sse.Hub, name ...string) {
	labels := prometheus.Labels{}
	if len(name) > 0 && name[0] != "" {
		labels["hub"] = name[0]
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ssekit_open_streams", Help: "Open event streams.", ConstLabels: labels},
			func() float64 { return float64(hub.Stats().Streams) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ssekit_detached_streams", Help: "Open event streams on detached connections (HandlerOptions.Detach).", ConstLabels: labels},
			func() float64 { return float64(hub.Stats().Detached) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ssekit_queued_bytes", Help: "Bytes waiting in streams' queues.", ConstLabels: labels},
			func() float64 { return float64(hub.Stats().QueuedBytes) }),
	)
}
