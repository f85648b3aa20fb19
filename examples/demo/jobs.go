package main

// Jobs: POST /jobs starts one, which publishes its progress on the topic
// "job/<id>", 0 to 100 percent, then "done". A page that reloads resumes its
// stream after the last event it saw, and the store replays what the page
// missed meanwhile.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const (
	// maxRunningJobs bounds the jobs running at once, in all.
	maxRunningJobs = 16
	// maxKeptJobs bounds the jobs kept; past it the oldest finished ones
	// are forgotten.
	maxKeptJobs = 256
)

// jobState is a job as GET /jobs/{id} and POST /jobs answer it.
type jobState struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"`
	Progress int       `json:"progress"` // percent
	Done     bool      `json:"done"`
	Started  time.Time `json:"started"`
}

// progressData is the data of a "progress" event, and doneData that of
// the "done" event that follows the last one.
type progressData struct {
	Job      string `json:"job"`
	Progress int    `json:"progress"`
}

type doneData struct {
	Job      string  `json:"job"`
	Progress int     `json:"progress"`
	Seconds  float64 `json:"seconds"`
}

// jobs is the table of jobs.
type jobs struct {
	mu      sync.Mutex
	byID    map[string]*jobState
	order   []string // IDs, oldest first
	running int
}

func newJobs() *jobs {
	return &jobs{byID: make(map[string]*jobState)}
}

// add records a new job, unless too many are running.
func (js *jobs) add() (jobState, bool) {
	var b [6]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	j := &jobState{ID: id, Topic: jobPrefix + id, Started: time.Now()}
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.running >= maxRunningJobs {
		return jobState{}, false
	}
	js.running++
	js.byID[id] = j
	js.order = append(js.order, id)
	for i := 0; len(js.byID) > maxKeptJobs && i < len(js.order); {
		if old := js.byID[js.order[i]]; old.Done {
			delete(js.byID, old.ID)
			js.order = append(js.order[:i], js.order[i+1:]...)
		} else {
			i++
		}
	}
	return *j, true
}

// get returns the state of job id.
func (js *jobs) get(id string) (jobState, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.byID[id]
	if !ok {
		return jobState{}, false
	}
	return *j, true
}

// set records a job's progress.
func (js *jobs) set(id string, progress int) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.byID[id].Progress = progress
}

// finish counts a job out: it is done, or it stopped at shutdown.
func (js *jobs) finish(id string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if j := js.byID[id]; !j.Done {
		j.Done = true
		js.running--
	}
}

// runningCount returns how many jobs are running.
func (js *jobs) runningCount() int {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.running
}

// validJobID reports whether id has the form of a job ID: 12 lowercase hex
// digits.
func validJobID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// startJob starts a job and answers its state, 201 Created.
func (d *demo) startJob(w http.ResponseWriter, r *http.Request) {
	j, ok := d.jobs.add()
	if !ok {
		http.Error(w, "too many jobs are running; wait for one to finish", http.StatusTooManyRequests)
		return
	}
	if !d.goWork(func(ctx context.Context) { d.runJob(ctx, j) }) {
		d.jobs.finish(j.ID)
		http.Error(w, "the demo is shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Location", "/jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, j)
}

// jobState answers GET /jobs/{id}: what a page reloads after a reset.
func (d *demo) jobState(w http.ResponseWriter, r *http.Request) {
	j, ok := d.jobs.get(r.PathValue("id"))
	if !ok {
		http.Error(w, "no such job (the demo forgets jobs when it restarts)", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// runJob publishes the progress of job j, one percent every jobStep, then
// "done". It returns early when ctx is done.
func (d *demo) runJob(ctx context.Context, j jobState) {
	defer d.jobs.finish(j.ID)
	t := time.NewTicker(d.cfg.jobStep)
	defer t.Stop()
	for p := 0; p <= 100; p++ {
		if p > 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		_, err := d.publish(ctx, j.Topic, "progress", progressData{Job: j.ID, Progress: p})
		logPublishError(ctx, "job progress", err)
		d.jobs.set(j.ID, p)
	}
	d.jobs.finish(j.ID) // before "done": a page that sees it and asks agrees
	took := time.Since(j.Started).Seconds()
	_, err := d.publish(ctx, j.Topic, "done", doneData{Job: j.ID, Progress: 100, Seconds: took})
	logPublishError(ctx, "job done", err)
	slog.Debug("ssekit demo: job done", "job", j.ID, "seconds", took)
}
