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

	// The scale scenarios' own measures (the common fields above hold
	// what they share: hotchurn's deliveries and latency, say).
	Notify *NotifyResult `json:"notify,omitempty"`
	Churn  *ChurnResult  `json:"churn,omitempty"`
	Store  *StoreResult  `json:"store,omitempty"`
}

// NotifyResult is the notification feed's storm and resume (ScNotify).
type NotifyResult struct {
	Streams          int            `json:"streams"`
	Rate             float64        `json:"rate"`
	Seconds          float64        `json:"seconds"`
	BroadcastEvery   int            `json:"broadcast_every"`
	Published        int            `json:"published"`          // events of the storm
	Broadcast        int            `json:"broadcast"`          // of which to the broadcast topic
	PublishRate      float64        `json:"publish_rate"`       // what the server's publisher reached
	StormCPUSec      float64        `json:"storm_cpu_sec"`      // server CPU from the first publish until delivery ended
	StormCPUPct      float64        `json:"storm_cpu_percent"`  // the same in percent of one core
	StormWallSec     float64        `json:"storm_wall_sec"`     // that span
	LiveExpected     int64          `json:"live_expected"`      // deliveries the storm owed the streams (per the server's log)
	LiveDelivered    int64          `json:"live_delivered"`     // of which received
	LiveP50Ms        float64        `json:"live_p50_ms"`        // publish to delivery, during the storm
	LiveP99Ms        float64        `json:"live_p99_ms"`        //
	LiveMaxMs        float64        `json:"live_max_ms"`        //
	StormClosed      int64          `json:"storm_closed"`       // streams the server closed during the storm
	StormResets      int64          `json:"storm_resets"`       // reset events during the storm
	GenCPUPct        float64        `json:"gen_cpu_percent"`    // the generator's, over the storm
	OtherCPUPct      float64        `json:"other_cpu_percent"`  // every other process's, over the storm
	RSSKiB           int64          `json:"rss_kib"`            // server RSS after the storm
	HeapKiB          int64          `json:"heap_kib"`           // server Go heap (HeapAlloc) after the storm
	BackSeconds      float64        `json:"back_seconds"`       // the IDs are the streams' this long before the end
	IDsSnapshotSec   float64        `json:"ids_snapshot_sec"`   // seconds after the first publish the IDs were taken
	Reconnect        int            `json:"reconnect"`          // clients that come back
	Resumed          int            `json:"resumed"`            // of which received every event after their ID, no reset
	ResetClients     int            `json:"reset_clients"`      // of which received a reset
	Resets           map[string]int `json:"resets,omitempty"`   // reset events, by reason
	SilentGaps       int64          `json:"silent_gaps"`        // events missing for clients that got no reset
	MissedAfterReset int64          `json:"missed_after_reset"` // events not replayed to clients that got a reset
	Unexpected       int64          `json:"unexpected"`         // events received that were not owed (or twice)
	ClientsShort     int            `json:"clients_short"`      // clients with no reset that lack events
	ReplayExpected   int64          `json:"replay_expected"`    // events owed to the clients that came back
	Replayed         int64          `json:"replayed"`           // of which received
	FailedConnects   int64          `json:"failed_connects"`
	ResumeP50Ms      float64        `json:"resume_p50_ms"` // connect to the last owed event, clients that got all
	ResumeP99Ms      float64        `json:"resume_p99_ms"`
	ResumeMaxMs      float64        `json:"resume_max_ms"`
	ResumeWallSec    float64        `json:"resume_wall_sec"`         // reconnect until the last client had all (or gave up)
	ResumeCPUSec     float64        `json:"resume_cpu_sec"`          // server CPU over that span
	ReplayCPUUs      float64        `json:"replay_cpu_us_per_event"` // ResumeCPUSec per replayed event, µs
}

// ChurnResult is the hot topic under connection churn (ScHotChurn); the
// hot topic's deliveries and latency are in the Result's common fields.
type ChurnResult struct {
	Rate         float64 `json:"churn_rate"` // connects (and as many disconnects) per second, target
	HoldSeconds  float64 `json:"hold_seconds"`
	Connects     int64   `json:"connects"`       // churn connects answered with 200
	Failed       int64   `json:"failed"`         // churn connects refused or failed
	Abandoned    int64   `json:"abandoned"`      // closed before their head came
	ConnectP50Ms float64 `json:"connect_p50_ms"` // request sent to response head
	ConnectP99Ms float64 `json:"connect_p99_ms"`
	ConnectMaxMs float64 `json:"connect_max_ms"`
	Probes       int     `json:"probes"`       // GET /debug/hub calls
	StatsP50Us   float64 `json:"stats_p50_us"` // Hub.Stats, as the server timed it
	StatsP99Us   float64 `json:"stats_p99_us"`
	StatsMaxUs   float64 `json:"stats_max_us"`
	SubsP50Us    float64 `json:"subscribers_p50_us,omitempty"` // Hub.Subscribers("hot"), where the core has it
	SubsP99Us    float64 `json:"subscribers_p99_us,omitempty"`
	SubsMaxUs    float64 `json:"subscribers_max_us,omitempty"`
	ServerCPUPct float64 `json:"server_cpu_percent"`
}

// StoreResult is the MemoryStore's memory (ScStore): the server's store
// measurement (BENCH_STOREMEM, see servers/ssekit/storemem.go) per case,
// and the core's BenchmarkMemoryStoreMemory where the core has it.
type StoreResult struct {
	Cases []StoreCase `json:"cases"`
	// CoreBench maps each sub-benchmark of BenchmarkMemoryStoreMemory
	// ("events", "topics=100000") to its metrics by unit.
	CoreBench map[string]map[string]float64 `json:"core_bench,omitempty"`
	CoreNote  string                        `json:"core_note,omitempty"` // why CoreBench is missing
}

// StoreCase is one BENCH_STOREMEM case.
type StoreCase struct {
	Case             string  `json:"case"`
	Appended         int     `json:"appended"`
	Topics           int     `json:"topics"`
	DataBytes        int     `json:"data_bytes"`
	Retained         int64   `json:"retained"`
	HeapBytes        int64   `json:"heap_bytes"`
	PeakHeapBytes    int64   `json:"peak_heap_bytes,omitempty"`
	BytesPerRetained float64 `json:"bytes_per_retained"`
	AppendNS         float64 `json:"append_ns"`
	HasMaxBytes      bool    `json:"has_max_bytes"`
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
	// Parts are the runs merged into this report after the one above
	// (cmd/run -merge), each with the scenarios whose results it replaced.
	Parts []Part `json:"parts,omitempty"`
}

// Part is a run merged into a report.
type Part struct {
	Started   time.Time         `json:"started"`
	Quick     bool              `json:"quick"`
	Seconds   float64           `json:"seconds"`
	Env       map[string]string `json:"env"`
	Scenarios []string          `json:"scenarios"`
	Servers   []string          `json:"servers"`
}

// ServerInfo is a server as the report lists it.
type ServerInfo struct {
	Name     string `json:"name"`
	Delivers bool   `json:"delivers"`
	Resume   bool   `json:"resume"`
	Notes    string `json:"notes"`
	// Commit is the full hash of the core a server named
	// "<server>@<commit>" was built against.
	Commit string `json:"commit,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
