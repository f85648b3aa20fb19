package sseclient

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ErrReadTimeout is why a stream ended when no byte arrived on it for
// Options.ReadTimeout, not even a comment. The client then reconnects.
var ErrReadTimeout = errors.New("sseclient: no data within the read timeout")

// StatusError is the error for a response whose status is neither 200 OK
// nor 204 No Content, when the client does not retry it (see
// Options.RetryStatus). A browser's EventSource stops for good on such a
// response, and so does a Client.
type StatusError struct {
	StatusCode int         // the response's status code
	Header     http.Header // the response's header
	Body       string      // the start of the response body, at most 1 KiB
}

// Error implements error.
func (e *StatusError) Error() string {
	s := "sseclient: status " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		s += ": " + strconv.Quote(e.Body)
	}
	return s
}

// ContentTypeError is the error for a 200 OK response whose media type is
// not text/event-stream. A browser's EventSource stops for good on such a
// response, and so does a Client.
type ContentTypeError struct {
	ContentType string // the response's Content-Type header
}

// Error implements error.
func (e *ContentTypeError) Error() string {
	return "sseclient: Content-Type " + strconv.Quote(e.ContentType) + " is not text/event-stream"
}

// ResetError says that the server could not send every event the client
// missed while it was away: the client should reload its state, because
// events may be lost. The stream goes on after it.
//
// A Client reports one for every event of type Options.ResetEventType,
// "sse-reset" by default, which is what an ssekit hub sends when it cannot
// replay what a reconnecting client missed (its Last-Event-ID is unknown,
// from an earlier server lifetime or older than the server's history, the
// client's queue overflowed, or the history was unavailable).
type ResetError struct {
	// Reason is the "reason" of the event's JSON data: "unknown-id",
	// "evicted", "dropped", "unavailable", or another a server chose; empty
	// when the data has none.
	Reason string

	// Event is the reset event itself. Its LastEventID is where the stream
	// resumes from.
	Event Event
}

// Error implements error.
func (e *ResetError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return "sseclient: stream reset (" + reason + "): events may have been missed"
}

// newResetError makes the ResetError for the reset event ev.
func newResetError(ev Event) *ResetError {
	var data struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal([]byte(ev.Data), &data)
	return &ResetError{Reason: data.Reason, Event: ev}
}
