package runner

import "time"

// Result is one scenario run against one server. Fields that do not apply
// to a scenario are left out of the JSON.
type Result struct {
	Server   string `json:"server"`
	Scenario string `json:"scenario"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`

	Conns   int     `json:"conns,omitempty"`   // healthy subscribers
	Stalled int     `json:"stalled,omitempty"` // subscribers that never read
	Events  int     `json:"events,omitempty"`  // events published per phase
	Rate    float64 `json:"rate,omitempty"`    // target publish rate, events/s (0: as fast as possible)
	Size    int     `json:"size,omitempty"`    // event data bytes

	Deliveries    int64   `json:"deliveries,omitempty"`
	Expected      int64   `json:"expected,omitempty"`
	Losses        int64   `json:"losses"`
	Gaps          int64   `json:"gaps,omitempty"`
	Dups          int64   `json:"dups,omitempty"`
	Other         int64   `json:"other_events,omitempty"` // e.g. reset events
	Disconnects   int     `json:"disconnects,omitempty"`  // subscribers closed by the server during the phase
	DeliveriesSec float64 `json:"deliveries_per_sec,omitempty"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
	MaxMs         float64 `json:"max_ms,omitempty"`

	PublishSec     float64 `json:"publish_sec,omitempty"` // time the server's publish loop took
	PublishRate    float64 `json:"publish_rate,omitempty"`
	PublishBlocked bool    `json:"publish_blocked,omitempty"` // the publish request did not finish in time

	ServerCPUSec     float64 `json:"server_cpu_sec,omitempty"`
	CPUPerMillionSec float64 `json:"server_cpu_sec_per_million,omitempty"`
	GenCPUSec        float64 `json:"gen_cpu_sec,omitempty"`
	GenCPUPercent    float64 `json:"gen_cpu_percent,omitempty"`   // of one core, over the phase
	OtherCPUPercent  float64 `json:"other_cpu_percent,omitempty"` // CPU of every other process on the machine, % of one core
	WallSec          float64 `json:"wall_sec,omitempty"`

	RSSBeforeKiB      int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB       int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnKiB     float64 `json:"rss_per_conn_kib,omitempty"`
	GoroutinesBefore  int     `json:"goroutines_before,omitempty"`
	GoroutinesAfter   int     `json:"goroutines_after,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"`
	GenRSSKiB         int64   `json:"gen_rss_kib,omitempty"`

	OpenSec  float64 `json:"open_sec,omitempty"` // connect storm: until every stream was open
	Failed   int64   `json:"failed,omitempty"`   // connections refused or failed
	CatchP50 float64 `json:"catchup_p50_ms,omitempty"`
	CatchP99 float64 `json:"catchup_p99_ms,omitempty"`
	CatchMax float64 `json:"catchup_max_ms,omitempty"`

	Steps          []Step  `json:"steps,omitempty"`
	SustainedRate  float64 `json:"sustained_rate,omitempty"` // events/s
	SustainedDeliv float64 `json:"sustained_deliveries_per_sec,omitempty"`
	StopReason     string  `json:"stop_reason,omitempty"`
}

// Step is one rate of the maximum-rate scenario.
type Step struct {
	Rate          float64 `json:"rate"`
	PublishRate   float64 `json:"publish_rate"`
	DeliveriesSec float64 `json:"deliveries_per_sec"`
	Losses        int64   `json:"losses"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	CPUPerMillion float64 `json:"server_cpu_sec_per_million"`
	OtherCPU      float64 `json:"other_cpu_percent"`
	Pass          bool    `json:"pass"`
	Why           string  `json:"why,omitempty"`
	Retried       bool    `json:"retried,omitempty"` // failed on p99 alone; the next step is its second try
}

// Report is the results file.
type Report struct {
	Started   time.Time         `json:"started"`
	Quick     bool              `json:"quick"`
	Seconds   float64           `json:"seconds"`
	Env       map[string]string `json:"env"`
	Plan      Plan              `json:"plan"`
	Servers   []ServerInfo      `json:"servers"`
	Results   []Result          `json:"results"`
	Generator string            `json:"generator"`
}

// ServerInfo is a server as the report lists it.
type ServerInfo struct {
	Name     string `json:"name"`
	Delivers bool   `json:"delivers"`
	Resume   bool   `json:"resume"`
	Notes    string `json:"notes"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
