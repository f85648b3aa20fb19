package sse

import (
	"net/http"
	"time"
)

// EndReason says why a stream ended.
type EndReason int

const (
	// EndClientGone: the client closed the connection.
	EndClientGone EndReason = iota + 1
	// EndSlowConsumer: the stream's queue filled up (policy SlowConsumerDisconnect).
	EndSlowConsumer
	// EndWriteTimeout: a write did not complete within Options.WriteTimeout.
	EndWriteTimeout
	// EndWriteError: a write failed.
	EndWriteError
	// EndMaxAge: the stream reached Options.MaxStreamAge.
	EndMaxAge
	// EndShutdown: Hub.Shutdown ended it.
	EndShutdown
	// EndDeadline: the request's context passed its deadline (a timeout
	// middleware); the stream ended with a retry hint.
	EndDeadline
	// EndRequested: Hub.EndStreams ended it.
	EndRequested
	// EndComplete: the function serving a per-request stream (Hub.Stream)
	// returned.
	EndComplete
)

var endReasonNames = [...]string{
	EndClientGone:   "client gone",
	EndSlowConsumer: "slow consumer",
	EndWriteTimeout: "write timeout",
	EndWriteError:   "write error",
	EndMaxAge:       "max age",
	EndShutdown:     "shutdown",
	EndDeadline:     "deadline",
	EndRequested:    "requested",
	EndComplete:     "complete",
}

func (r EndReason) String() string {
	if r > 0 && int(r) < len(endReasonNames) {
		return endReasonNames[r]
	}
	return "unknown"
}

// RefusalReason says why a stream request was turned away.
type RefusalReason int

const (
	// RefusedOther: HandlerOptions.Topics refused the request, or it failed.
	RefusedOther RefusalReason = iota + 1
	// RefusedBadRequest: wrong method, or invalid or too many topics.
	RefusedBadRequest
	// RefusedCannotFlush: the ResponseWriter cannot flush.
	RefusedCannotFlush
	// RefusedUnauthenticated: no valid token (401).
	RefusedUnauthenticated
	// RefusedForbidden: Auth.Authorize said no (403).
	RefusedForbidden
	// RefusedOrigin: the Origin is not allowed by CORS (403).
	RefusedOrigin
	// RefusedStreamLimit, RefusedPrincipalLimit, RefusedIPLimit: a
	// connection cap of Options was reached.
	RefusedStreamLimit
	RefusedPrincipalLimit
	RefusedIPLimit
	// RefusedShutdown: the hub is shutting down.
	RefusedShutdown
)

var refusalReasonNames = [...]string{
	RefusedOther:           "other",
	RefusedBadRequest:      "bad request",
	RefusedCannotFlush:     "cannot flush",
	RefusedUnauthenticated: "unauthenticated",
	RefusedForbidden:       "forbidden",
	RefusedOrigin:          "origin",
	RefusedStreamLimit:     "stream limit",
	RefusedPrincipalLimit:  "principal limit",
	RefusedIPLimit:         "ip limit",
	RefusedShutdown:        "shutdown",
}

func (r RefusalReason) String() string {
	if r > 0 && int(r) < len(refusalReasonNames) {
		return refusalReasonNames[r]
	}
	return "unknown"
}

// ResetReason says why a stream got the reset event (Options.ResetEventType):
// the events its client missed cannot all be sent. It is the "reason" of
// the event's JSON data.
type ResetReason string

const (
	// ResetUnknownID: the Last-Event-ID is from an earlier lifetime of the
	// store or from another store, malformed, too long, or beyond the
	// newest event.
	ResetUnknownID ResetReason = "unknown-id"
	// ResetEvicted: the store has dropped events of the stream's topics
	// after the Last-Event-ID, or a shared store lost events during an
	// outage.
	ResetEvicted ResetReason = "evicted"
	// ResetDropped: with SlowConsumerDropOldest, the stream's queue
	// overflowed and older events were dropped.
	ResetDropped ResetReason = "dropped"
	// ResetReplayLimit: the client missed more than one replay may send
	// (Options.MaxReplayEvents, MaxReplayBytes).
	ResetReplayLimit ResetReason = "replay-limit"
	// ResetUnavailable: the store failed while the hub read its history.
	ResetUnavailable ResetReason = "unavailable"
	// ResetNewEpoch: the store began a new lifetime (its history was lost,
	// see Listener.NewEpoch) while the stream was open. The reset's ID
	// names the start of the new lifetime.
	ResetNewEpoch ResetReason = "new-epoch"
)

// ReplayOutcome says how a resuming stream's replay went.
type ReplayOutcome int

const (
	// ReplayHit: every missed event was sent (possibly none).
	ReplayHit ReplayOutcome = iota + 1
	// ReplayReset: the missed events could not be sent; the stream got the
	// reset event. ReplayInfo.Reason says why.
	ReplayReset
)

func (o ReplayOutcome) String() string {
	switch o {
	case ReplayHit:
		return "hit"
	case ReplayReset:
		return "reset"
	}
	return "unknown"
}

// StreamInfo describes one stream to an Observer.
type StreamInfo struct {
	Principal Principal
	ClientIP  string
	Topics    []string
	Started   time.Time
}

// Observer receives what a hub does, for metrics and tracing. Every field is
// optional. Hooks run on the goroutine that did the work, never under the
// hub's locks, and must return quickly.
//
// It is a struct of functions, like net/http/httptrace.ClientTrace, so that
// new hooks can be added without breaking implementations.
type Observer struct {
	// StreamOpened runs when a stream has started.
	StreamOpened func(StreamInfo)
	// StreamClosed runs when a stream has ended; sent counts the events
	// written to it (replayed ones included).
	StreamClosed func(info StreamInfo, reason EndReason, sent int)
	// Refused runs when a request was answered without a stream.
	Refused func(r *http.Request, reason RefusalReason, status int)
	// Published runs after each successful Publish on this hub. With a
	// Broadcaster store, only the hub that published sees it; summed
	// across instances, it counts each event once.
	Published func(topic string)
	// Delivered runs after an event was handed to this hub's streams: on
	// every hub that shares a Broadcaster store, once per event. queued is
	// the number of streams the event was queued for, dropped the number
	// of streams that lost older events to make room (SlowConsumerDropOldest), and
	// evicted the number of streams ended as slow consumers.
	Delivered func(topic string, queued, dropped, evicted int)
	// Replayed runs after a resuming stream's replay with the number of
	// events sent, and for ReplayReset why (ResetUnknownID, ResetEvicted,
	// ResetReplayLimit or ResetUnavailable; "" for ReplayHit).
	Replayed func(outcome ReplayOutcome, events int, reason ResetReason)
	// BroadcastState runs when a Broadcaster store stops delivering (err
	// says why; events published meanwhile arrive when it catches up) and
	// when it delivers again (nil).
	BroadcastState func(err error)
}
