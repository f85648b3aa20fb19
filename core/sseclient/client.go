package sseclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	defaultInitialDelay   = time.Second
	defaultMaxDelay       = 30 * time.Second
	defaultResetAfter     = time.Minute
	defaultReadTimeout    = time.Minute
	defaultMaxEventSize   = 1 << 20
	defaultMaxLineSize    = 1 << 20
	defaultResetEventType = "sse-reset"
	excerptSize           = 1 << 10 // the most of an error response's body kept
)

// Options configures a Client, or Do. The zero value, or nil, is ready to
// use; every default is given beside its field. Options that are about
// reconnecting do not apply to Do.
type Options struct {
	// HTTPClient sends the requests. Default http.DefaultClient. Its
	// Timeout, if set, bounds each whole stream, so leave it zero and use
	// ReadTimeout. Its Jar, if set, keeps cookies across reconnections.
	HTTPClient *http.Client

	// Header is sent with every request, for example an Authorization.
	// Accept: text/event-stream and Cache-Control: no-cache are sent too,
	// unless Header sets them. Last-Event-ID is the client's own.
	Header http.Header

	// LastEventID, when not empty, is sent as Last-Event-ID with the first
	// request, so that the stream resumes after that event: one saved by an
	// earlier run, for instance.
	LastEventID string

	// Prepare, when set, is called with every request just before it is
	// sent, the first one and every reconnection, and may change it: put a
	// fresh token in a header, or a fresh ticket in the URL's query. An
	// error stops the client, which returns it.
	Prepare func(*http.Request) error

	// InitialDelay and MaxDelay shape the wait before a reconnection: a
	// random duration between 0 and InitialDelay for the first one, and
	// twice as long at most for each next one (full jitter), up to
	// MaxDelay, until a stream stays open for ResetAfter. The reconnection
	// time a server sets with a retry field, and a Retry-After header, are
	// waited for on top, so the client never comes back sooner than the
	// server asked; MaxDelay does not cap them. Defaults 1s and 30s.
	InitialDelay, MaxDelay time.Duration

	// ResetAfter is how long a stream must stay open for the waits to
	// start again from InitialDelay. Default 1 minute.
	ResetAfter time.Duration

	// MaxRetries, when positive, is how many times in a row the client
	// reconnects without a stream staying open for ResetAfter before it
	// gives up. Default: no limit.
	MaxRetries int

	// ReadTimeout ends a stream on which nothing arrives, not even a
	// comment, for this long (up to a quarter more), and the client
	// reconnects; it bounds the wait for the response header too. Time the
	// caller spends with an event does not count. An ssekit hub sends a
	// comment every 15 s by default; a server that stays silent longer
	// needs a longer ReadTimeout. Default 1 minute; negative: none.
	ReadTimeout time.Duration

	// MaxEventSize bounds the data of one event, and MaxLineSize every
	// other line of the stream (see Parser). A stream that goes beyond
	// either stops the client with an error that matches ErrEventTooLarge
	// or ErrLineTooLong: reconnecting would only read the same event
	// again. Defaults 1 MiB each; negative: no limit.
	MaxEventSize, MaxLineSize int

	// ResetEventType is the type of the events reported as a *ResetError.
	// Default "sse-reset", the type an ssekit hub uses unless configured
	// otherwise.
	ResetEventType string

	// RetryStatus, when set, reports whether a response with the given
	// status (other than 200 and 204) is retried after the usual wait,
	// instead of stopping the client with a *StatusError: 502 and 504
	// from a proxy during a deploy, for instance. A 429 Too Many Requests
	// or 503 Service Unavailable with a Retry-After header is always
	// retried, after the time it says. Default: no other status is
	// retried, as with a browser.
	RetryStatus func(status int) bool

	// OnConnect, OnDisconnect and OnRetry, when set, are called when a
	// stream opens, when it ends, and before the wait for a reconnection,
	// in the goroutine that reads events. They must not block.
	OnConnect    func(ConnectInfo)
	OnDisconnect func(DisconnectInfo)
	OnRetry      func(RetryInfo)
}

// ConnectInfo describes a stream that opened, for Options.OnConnect.
type ConnectInfo struct {
	// Response is the server's response. Its Body is the stream, which
	// the client reads; do not read or close it.
	Response *http.Response

	// LastEventID is the Last-Event-ID the request sent, "" for none.
	LastEventID string
}

// DisconnectInfo describes a stream that ended, for Options.OnDisconnect.
type DisconnectInfo struct {
	// Err says why the stream ended: io.EOF when the server ended it,
	// ErrReadTimeout, a network error, an error that matches
	// ErrEventTooLarge or ErrLineTooLong, or the context's error. It is nil
	// when the caller stopped reading.
	Err error

	Duration    time.Duration // how long the stream was open
	Events      int           // the events it dispatched
	LastEventID string        // the last event ID when it ended
}

// RetryInfo describes a reconnection about to be made, for Options.OnRetry.
type RetryInfo struct {
	// Retry counts the reconnections since a stream last stayed open for
	// ResetAfter: 1 for the first.
	Retry int

	// Delay is the wait before the reconnection, as chosen.
	Delay time.Duration

	// Err is why the previous attempt ended: as DisconnectInfo.Err for a
	// stream, or the error of a request that failed, or a *StatusError
	// that is retried.
	Err error
}

// A Client reads one event stream as a browser's EventSource does: it
// sends Last-Event-ID when it reconnects, honours the retry field, skips
// events without data and stops for good on 204 No Content. Beyond that it
// waits with exponential backoff and full jitter between reconnections,
// reconnects when the stream falls silent, bounds event sizes, reports
// what happens (Options.OnConnect, OnDisconnect, OnRetry) and surfaces an
// ssekit hub's reset events as a *ResetError.
//
// A Client keeps its last event ID across calls of Events and Run: a new
// call resumes where the last one stopped. Only one call may run at a
// time. A Client is safe to share between goroutines.
type Client struct {
	req    *http.Request // the template of every request
	err    error         // why no request can be made
	opts   Options       // with defaults
	jitter func(time.Duration) time.Duration

	running atomic.Bool
	p       *Parser // read by one call of Events at a time

	mu     sync.Mutex
	lastID string
}

// New returns a Client that reads the event stream at url with GET
// requests. A url that is not http or https is reported by Events.
func New(url string, opts *Options) *Client {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err == nil && req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		err = fmt.Errorf("sseclient: URL scheme %q is not http or https", req.URL.Scheme)
	}
	if err != nil {
		err = fmt.Errorf("sseclient: %w", err)
	}
	return newClient(req, err, opts)
}

// FromRequest returns a Client that makes every request from req, which
// may have another method and a body: each request is a clone of req with
// the Events context, and a body from req.GetBody, which http.NewRequest
// sets for the usual readers. A req with a body and no GetBody is reported
// by Events.
func FromRequest(req *http.Request, opts *Options) *Client {
	var err error
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		err = errors.New("sseclient: FromRequest: the request has a body but no GetBody to send it again")
	}
	return newClient(req, err, opts)
}

func newClient(req *http.Request, err error, opts *Options) *Client {
	c := &Client{req: req, err: err, jitter: fullJitter}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	setDefault(&o.InitialDelay, defaultInitialDelay)
	setDefault(&o.MaxDelay, defaultMaxDelay)
	setDefault(&o.ResetAfter, defaultResetAfter)
	setDefault(&o.ReadTimeout, defaultReadTimeout)
	setDefault(&o.MaxEventSize, defaultMaxEventSize)
	setDefault(&o.MaxLineSize, defaultMaxLineSize)
	setDefault(&o.ResetEventType, defaultResetEventType)
	c.lastID = o.LastEventID
	c.p = NewParser(nil)
	c.p.MaxEventSize, c.p.MaxLineSize = max(o.MaxEventSize, 0), max(o.MaxLineSize, 0)
	c.p.lastID = o.LastEventID
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// fullJitter returns a random duration between 0 and d.
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

var errRunning = errors.New("sseclient: Events or Run is already running on this Client")

// Events returns an iterator over the events of the stream. It connects
// when the iteration starts, and reconnects whenever the stream breaks,
// resuming after the last event ID, until ctx ends, the server says to
// stop, or the loop breaks.
//
// The iterator yields a non-nil error in two cases. A *ResetError comes
// with the reset event, and the stream goes on after it. Any other error
// is the last thing yielded: ctx's error, a *StatusError, a
// *ContentTypeError, an error that matches ErrEventTooLarge or
// ErrLineTooLong, a TLS certificate that does not verify, an error from
// Options.Prepare, or, with Options.MaxRetries, the failure the client
// gave up on. Other network errors are retried. The iteration
// ends without an error when the server answers 204 No Content, which is
// how a server tells an EventSource to stop for good.
func (c *Client) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if c.err != nil {
			yield(Event{}, c.err)
			return
		}
		if !c.running.CompareAndSwap(false, true) {
			yield(Event{}, errRunning)
			return
		}
		defer c.running.Store(false)
		r := &runner{c: c, yield: yield, last: c.LastEventID()}
		if err := r.run(ctx); err != nil && !r.stopped {
			yield(Event{}, err)
		}
	}
}

// Run reads the stream as Events does and calls onEvent with each event
// and onReset with each *ResetError, until ctx ends, the stream stops for
// good or a callback returns an error, which Run returns. With a nil
// onReset, Run returns the first *ResetError, so that a reset is never
// missed; calling Run again resumes after the reset event. Run returns nil
// only when the server answered 204 No Content.
func (c *Client) Run(ctx context.Context, onEvent func(Event) error, onReset func(*ResetError) error) error {
	for ev, err := range c.Events(ctx) {
		if err == nil {
			if err := onEvent(ev); err != nil {
				return err
			}
			continue
		}
		var reset *ResetError
		if !errors.As(err, &reset) {
			return err
		}
		if onReset == nil {
			return reset
		}
		if err := onReset(reset); err != nil {
			return err
		}
	}
	return nil
}

// LastEventID returns the last event ID of the stream: what the client
// sends as Last-Event-ID when it reconnects. It may be called at any time,
// from any goroutine.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Do sends req once and reads its response as an event stream, without
// reconnecting: the way to read streaming APIs that answer a POST with
// text/event-stream. req's context bounds it. The iteration ends without
// an error when the stream ends; it yields a *StatusError for a status
// other than 200 and 204 (no event, no error), a *ContentTypeError, the
// error that broke the stream (ErrReadTimeout among them), and a
// *ResetError for a reset event, after which it goes on. Options about
// reconnecting do not apply.
func Do(req *http.Request, opts *Options) iter.Seq2[Event, error] {
	c := newClient(req, nil, opts)
	return func(yield func(Event, error) bool) {
		r := &runner{c: c, yield: yield, once: true, last: c.opts.LastEventID}
		if err := r.run(req.Context()); err != nil && !r.stopped {
			yield(Event{}, err)
		}
	}
}

// runner is one call of Events, or Do.
type runner struct {
	c       *Client
	yield   func(Event, error) bool
	once    bool   // Do: one request, no reconnection
	stopped bool   // yield returned false
	last    string // the last event ID, as the Client last heard
}

// ending is how an attempt ended.
type ending struct {
	err     error         // why; nil: 204, or the end of a stream read once, or the caller stopped
	retry   bool          // reconnect
	wait    time.Duration // the least wait before reconnecting: a Retry-After
	healthy bool          // a stream stayed open for ResetAfter
}

// run makes attempts until one ends for good, and returns its error.
func (r *runner) run(ctx context.Context) error {
	o := &r.c.opts
	retries := 0
	for {
		e := r.attempt(ctx)
		if !e.retry {
			return e.err
		}
		if e.healthy {
			retries = 0
		}
		if o.MaxRetries > 0 && retries >= o.MaxRetries {
			return fmt.Errorf("sseclient: giving up after %d reconnections: %w", retries, e.err)
		}
		retries++
		wait := e.wait
		if d, ok := r.c.p.Retry(); ok {
			wait = max(wait, d)
		}
		delay := wait + r.c.jitter(r.c.backoff(retries))
		if o.OnRetry != nil {
			o.OnRetry(RetryInfo{Retry: retries, Delay: delay, Err: e.err})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff returns the most the n-th reconnection in a row waits, beyond
// what the server asked.
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.InitialDelay
	for i := 1; i < n && d < c.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, c.opts.MaxDelay)
}

// attempt makes one request and reads its stream.
func (r *runner) attempt(ctx context.Context) ending {
	o := &r.c.opts
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wd *watchdog
	if o.ReadTimeout > 0 {
		wd = startWatchdog(o.ReadTimeout, func() { cancel(ErrReadTimeout) })
		defer wd.stop()
	}
	req, err := r.request(actx)
	if err != nil {
		return ending{err: err}
	}
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return r.broken(ctx, actx, err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if wd != nil {
		wd.r = resp.Body
		body = wd
	}
	if e, ok := r.check(ctx, resp, body); !ok {
		return e
	}

	p := r.c.p
	p.Reset(body)
	if o.OnConnect != nil {
		o.OnConnect(ConnectInfo{Response: resp, LastEventID: r.last})
	}
	start := time.Now()
	events := 0
	for {
		ev, err := p.Next()
		r.setLastID(p.LastEventID())
		if err != nil {
			return r.ended(ctx, actx, err, time.Since(start), events)
		}
		events++
		var reset error
		if ev.Type == o.ResetEventType {
			reset = newResetError(ev)
		}
		if wd != nil {
			wd.busy.Store(true)
		}
		ok := r.yield(ev, reset)
		if wd != nil {
			wd.busy.Store(false)
			wd.active.Store(true)
		}
		if !ok {
			r.stopped = true
			if o.OnDisconnect != nil {
				o.OnDisconnect(DisconnectInfo{Duration: time.Since(start), Events: events, LastEventID: r.last})
			}
			return ending{}
		}
	}
}

// request makes the request of an attempt.
func (r *runner) request(ctx context.Context) (*http.Request, error) {
	o := &r.c.opts
	t := r.c.req
	req := t.Clone(ctx)
	if !r.once && t.GetBody != nil {
		body, err := t.GetBody()
		if err != nil {
			return nil, fmt.Errorf("sseclient: GetBody: %w", err)
		}
		req.Body = body
	}
	for k, v := range o.Header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if req.Header.Get("Cache-Control") == "" {
		req.Header.Set("Cache-Control", "no-cache")
	}
	if r.last != "" {
		req.Header.Set("Last-Event-ID", r.last)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	if o.Prepare != nil {
		if err := o.Prepare(req); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// check reports whether resp is a stream to read, and if not, how the
// attempt ends.
func (r *runner) check(ctx context.Context, resp *http.Response, body io.Reader) (ending, bool) {
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return ending{}, false
	default:
		excerpt, err := io.ReadAll(io.LimitReader(body, excerptSize))
		if err != nil && ctx.Err() != nil {
			return ending{err: ctx.Err()}, false
		}
		e := ending{err: &StatusError{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(excerpt)}}
		if r.once {
			return e, false
		}
		wait, ok := retryAfter(resp.Header, time.Now())
		code := resp.StatusCode
		e.retry = ok && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable)
		if rs := r.c.opts.RetryStatus; rs != nil && rs(code) {
			e.retry = true
		}
		if e.retry {
			e.wait = wait
		}
		return e, false
	}
	ct := resp.Header.Get("Content-Type")
	// A malformed parameter does not hide the media type.
	mt, _, err := mime.ParseMediaType(ct)
	if (err != nil && err != mime.ErrInvalidMediaParameter) || mt != "text/event-stream" {
		return ending{err: &ContentTypeError{ContentType: ct}}, false
	}
	return ending{}, true
}

// retryAfter returns the wait a Retry-After header asks for: a number of
// seconds or a date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(s, 1<<32)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// broken is how an attempt ends when its request failed.
func (r *runner) broken(ctx, actx context.Context, err error) ending {
	if ctx.Err() != nil {
		return ending{err: ctx.Err()}
	}
	if context.Cause(actx) == ErrReadTimeout {
		err = ErrReadTimeout
	}
	// A certificate that does not verify will not verify next time either.
	var cert *tls.CertificateVerificationError
	return ending{err: err, retry: !r.once && !errors.As(err, &cert)}
}

// ended is how an attempt ends when its stream ended with err.
func (r *runner) ended(ctx, actx context.Context, err error, open time.Duration, events int) ending {
	o := &r.c.opts
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case context.Cause(actx) == ErrReadTimeout:
		err = ErrReadTimeout
	}
	if o.OnDisconnect != nil {
		o.OnDisconnect(DisconnectInfo{Err: err, Duration: open, Events: events, LastEventID: r.last})
	}
	switch {
	case ctx.Err() != nil, errors.Is(err, ErrEventTooLarge), errors.Is(err, ErrLineTooLong):
		return ending{err: err}
	case r.once && err == io.EOF:
		return ending{}
	}
	return ending{err: err, retry: !r.once, healthy: open >= o.ResetAfter}
}

// setLastID records the stream's last event ID.
func (r *runner) setLastID(id string) {
	if id == r.last || r.once {
		r.last = id
		return
	}
	r.last = id
	r.c.mu.Lock()
	r.c.lastID = id
	r.c.mu.Unlock()
}

// watchdogChecks is how many checks make one ReadTimeout.
const watchdogChecks = 4

// watchdog cuts a stream on which nothing arrives for a while. It checks
// every quarter of the timeout, so that reading costs only an atomic store
// and never touches the timer.
type watchdog struct {
	r      io.Reader
	every  time.Duration
	fire   func()
	active atomic.Bool // bytes arrived, or the caller took an event, since the last check
	busy   atomic.Bool // the caller holds an event

	mu   sync.Mutex
	t    *time.Timer
	idle int  // checks in a row that found nothing
	done bool // fired, or stopped
}

func startWatchdog(timeout time.Duration, fire func()) *watchdog {
	w := &watchdog{every: max(timeout/watchdogChecks, time.Millisecond), fire: fire}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(w.every, w.check)
	return w
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if w.active.Swap(false) || w.busy.Load() {
		w.idle = 0
	} else if w.idle++; w.idle >= watchdogChecks {
		w.done = true
		w.fire()
		return
	}
	w.t.Reset(w.every)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.t.Stop()
}

// Read implements io.Reader.
func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.active.Store(true)
	}
	return n, err
}
