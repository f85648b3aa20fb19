// Package sseprom exports an ssekit hub's metrics to Prometheus.
//
//	m := sseprom.New(prometheus.DefaultRegisterer, sseprom.Options{})
//	hub, err := sse.NewHub(sse.Options{Observer: m.Observer()})
//	m.Watch(hub, "") // gauges from hub.Stats(), read once per scrape
//
// Metrics (all prefixed "ssekit_"):
//
//	streams_opened_total                 counter
//	streams_closed_total{reason}         counter: client gone, slow consumer, write timeout, ...
//	refused_total{reason,status}         counter: unauthenticated, forbidden, stream limit, ...
//	events_published_total               counter: events this instance published
//	events_fanned_out_total              counter: events this instance handed to its streams
//	                                     (with a shared store: every instance, each event once)
//	deliveries_total                     counter: events queued for streams
//	dropped_total                        counter: streams that lost queued events (SlowConsumerDropOldest)
//	evicted_total                        counter: streams ended as slow consumers
//	replays_total{outcome,reason}        counter: hit, or reset with unknown-id / evicted / ...
//	replayed_events_total                counter
//	events_sent_per_stream               histogram, observed when a stream ends
//	broadcast_up                         gauge: 1 while a shared store delivers, 0 during an outage
//	open_streams, detached_streams,      gauges, from hub.Stats() (Watch)
//	topics, queued_bytes
//
// Sum events_published_total across instances to count events; with a
// shared store (sseredis), events_fanned_out_total counts each event once
// per instance. Options.TopicLabel adds a topic label to the event
// counters: it is off by default, because one series per topic ("user/42")
// has no bound.
package sseprom

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssekit/ssekit/core/sse"
)

// Options configures New. The zero value is ready to use.
type Options struct {
	// TopicLabel, if set, adds a "topic" label to events_published_total,
	// events_fanned_out_total and deliveries_total, with the value it
	// returns for a topic. Every value is a time series: map topics to a
	// small set, such as "user" for "user/42". Default: no topic label.
	TopicLabel func(topic string) string
}

// Metrics holds the collectors. Make one with New.
type Metrics struct {
	reg        prometheus.Registerer
	topicLabel func(string) string

	opened      prometheus.Counter
	closed      *prometheus.CounterVec
	refused     *prometheus.CounterVec
	published   *prometheus.CounterVec
	fannedOut   *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	dropped     prometheus.Counter
	evicted     prometheus.Counter
	replays     *prometheus.CounterVec
	replayed    prometheus.Counter
	sent        prometheus.Histogram
	broadcastUp prometheus.Gauge
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	var topic []string
	if opts.TopicLabel != nil {
		topic = []string{"topic"}
	}
	m := &Metrics{
		reg:         reg,
		topicLabel:  opts.TopicLabel,
		opened:      prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_streams_opened_total", Help: "Event streams opened."}),
		closed:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_streams_closed_total", Help: "Event streams closed, by reason."}, []string{"reason"}),
		refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_refused_total", Help: "Stream requests answered without a stream."}, []string{"reason", "status"}),
		published:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_events_published_total", Help: "Events this instance published."}, topic),
		fannedOut:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_events_fanned_out_total", Help: "Events this instance handed to its streams."}, topic),
		deliveries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_deliveries_total", Help: "Events queued for streams."}, topic),
		dropped:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_dropped_total", Help: "Streams that lost queued events to make room (SlowConsumerDropOldest)."}),
		evicted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_evicted_total", Help: "Streams ended because their queue was full."}),
		replays:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssekit_replays_total", Help: "Resumed streams, by outcome."}, []string{"outcome", "reason"}),
		replayed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ssekit_replayed_events_total", Help: "Events sent by replays."}),
		sent:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ssekit_events_sent_per_stream", Help: "Events a stream sent in its life.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		broadcastUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ssekit_broadcast_up", Help: "1 while a shared store delivers events, 0 during an outage."}),
	}
	m.broadcastUp.Set(1)
	reg.MustRegister(m.opened, m.closed, m.refused, m.published, m.fannedOut, m.deliveries, m.dropped,
		m.evicted, m.replays, m.replayed, m.sent, m.broadcastUp)
	return m
}

// labels returns the label values of the event counters for topic.
func (m *Metrics) labels(topic string) []string {
	if m.topicLabel == nil {
		return nil
	}
	return []string{m.topicLabel(topic)}
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
		Published: func(topic string) {
			m.published.WithLabelValues(m.labels(topic)...).Inc()
		},
		Delivered: func(topic string, queued, dropped, evicted int) {
			l := m.labels(topic)
			m.fannedOut.WithLabelValues(l...).Inc()
			m.deliveries.WithLabelValues(l...).Add(float64(queued))
			m.dropped.Add(float64(dropped))
			m.evicted.Add(float64(evicted))
		},
		Replayed: func(o sse.ReplayOutcome, events int, reason sse.ResetReason) {
			m.replays.WithLabelValues(o.String(), string(reason)).Inc()
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

// Watch registers gauges that read hub.Stats(), once per scrape:
// ssekit_open_streams, ssekit_detached_streams (of those, the ones on
// detached connections), ssekit_topics and ssekit_queued_bytes (the events
// waiting in queues, each counted once however many streams it waits
// for). A process with several hubs names each, and the gauges get a "hub"
// label with the name; with one hub, pass "" for no label.
func (m *Metrics) Watch(hub *sse.Hub, name string) {
	var labels prometheus.Labels
	if name != "" {
		labels = prometheus.Labels{"hub": name}
	}
	desc := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, labels) }
	m.reg.MustRegister(&statsCollector{
		hub:      hub,
		streams:  desc("ssekit_open_streams", "Open event streams."),
		detached: desc("ssekit_detached_streams", "Open event streams on detached connections (HandlerOptions.Detach)."),
		topics:   desc("ssekit_topics", "Topics with at least one open stream."),
		queued:   desc("ssekit_queued_bytes", "Bytes of the events waiting in streams' queues, each event counted once."),
	})
}

// statsCollector reports a hub's Stats, read once per scrape.
type statsCollector struct {
	hub                               *sse.Hub
	streams, detached, topics, queued *prometheus.Desc
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.streams
	ch <- c.detached
	ch <- c.topics
	ch <- c.queued
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(c.detached, prometheus.GaugeValue, float64(st.Detached))
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(st.Topics))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.QueuedBytes))
}
