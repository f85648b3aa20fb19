package sse

import (
	"net/http"
	"strconv"
	"time"
)

// RefusalError is the answer to a stream request that is turned away before
// the stream starts. Make one with Refuse or TryLater.
type RefusalError struct {
	// Status is the HTTP status; http.StatusOK for TryLater.
	Status int
	// Message is the response body (text/plain) for a status other than 200.
	Message string
	// Retry is the reconnection delay hinted by TryLater.
	Retry time.Duration

	reason RefusalReason // for the Observer; 0: RefusedOther
}

func (e *RefusalError) Error() string {
	if e.Status == http.StatusOK {
		return "sse: try again in " + e.Retry.String()
	}
	return "sse: refused with " + strconv.Itoa(e.Status) + ": " + e.Message
}

// Refuse returns an error that answers a stream request with status and
// message (as text/plain) instead of a stream.
//
// A browser's EventSource treats every status other than 200 as final: it
// fires "error", ends in the CLOSED state and never reconnects by itself.
// Use 204 No Content to tell it to stop, 401 or 403 when it must not
// listen; use TryLater when it should come back.
func Refuse(status int, message string) error {
	if status < 200 || status > 599 || status == http.StatusOK {
		status = http.StatusInternalServerError
	}
	return &RefusalError{Status: status, Message: message}
}

// TryLater returns an error that answers a stream request with a 200 event
// stream that carries only a "retry" hint and then ends. A browser's
// EventSource reconnects after retry; that is the only way to say "not now"
// that browsers obey (a 429 or 503 stops them for good).
func TryLater(retry time.Duration) error {
	return &RefusalError{Status: http.StatusOK, Retry: max(retry, time.Millisecond)}
}
