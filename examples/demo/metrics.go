package main

// The live dashboard: a "metrics" event every second, with simulated
// traffic numbers and real ones from the hub.

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// metricsData is the data of a "metrics" event.
type metricsData struct {
	N    uint64  `json:"n"`    // 1 for the first of this process
	Time int64   `json:"t"`    // Unix milliseconds
	RPS  float64 `json:"rps"`  // simulated requests per second
	P99  float64 `json:"p99"`  // simulated 99th percentile latency, ms
	Jobs int     `json:"jobs"` // jobs running

	// From hub.Stats().
	Streams     int `json:"streams"`     // open event streams
	Topics      int `json:"topics"`      // topics with subscribers
	QueuedBytes int `json:"queuedBytes"` // bytes waiting in the streams' queues
}

// traffic simulates a service's load: slow waves plus noise that
// lingers, and a little extra for every running job.
type traffic struct {
	noiseRPS, noiseP99 float64
}

func (tr *traffic) next(n uint64, jobs int) (rps, p99 float64) {
	x := float64(n)
	tr.noiseRPS = 0.7*tr.noiseRPS + rand.NormFloat64()*40
	tr.noiseP99 = 0.6*tr.noiseP99 + rand.NormFloat64()*4
	rps = 1200 + 280*math.Sin(x/9) + 90*math.Sin(x/2.3) + tr.noiseRPS + 60*float64(jobs)
	p99 = 48 + 14*math.Sin(x/7+1) + tr.noiseP99 + 0.012*max(rps-1200, 0) + 3*float64(jobs)
	return math.Round(max(rps, 0)), math.Round(max(p99, 1)*10) / 10
}

// runMetrics publishes a "metrics" event at once and then every
// cfg.metricsEvery until ctx is done.
func (d *demo) runMetrics(ctx context.Context) {
	t := time.NewTicker(d.cfg.metricsEvery)
	defer t.Stop()
	var tr traffic
	for n := uint64(1); ; n++ {
		st := d.hub.Stats()
		m := metricsData{
			N:           n,
			Time:        time.Now().UnixMilli(),
			Jobs:        d.jobs.runningCount(),
			Streams:     st.Streams,
			Topics:      st.Topics,
			QueuedBytes: st.QueuedBytes,
		}
		m.RPS, m.P99 = tr.next(n, m.Jobs)
		_, err := d.publish(ctx, topicMetrics, "metrics", m)
		logPublishError(ctx, "metrics", err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
