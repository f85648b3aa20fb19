package ssetest

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Stream is an open event stream response.
type Stream struct {
	// Response is the server's response. Its Body is the event stream,
	// read by Next; do not read it directly.
	Response *http.Response

	p      *Parser
	resume string // the Last-Event-ID this stream was opened with
}

// StatusError is returned by Connect when the server answers with a status
// other than 200 OK.
type StatusError struct {
	Code int    // the response status code
	Body string // the first 1 KiB of the response body
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("ssetest: status %d %s: %q", e.Code, http.StatusText(e.Code), e.Body)
}

// Connect sends GET url with Accept: text/event-stream and Cache-Control:
// no-cache, plus Last-Event-ID when lastEventID != "", as an EventSource
// does. A nil client means http.DefaultClient.
//
// Like an EventSource, it accepts only a 200 OK whose Content-Type media
// type is text/event-stream. Otherwise it closes the body and returns an
// error: a *StatusError for a bad status.
func Connect(ctx context.Context, client *http.Client, url, lastEventID string) (*Stream, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	return Do(client, req)
}

// Do sends req, which may be any request (a POST that asks for a stream,
// say), with Accept: text/event-stream and Cache-Control: no-cache, and
// checks the response as Connect does. A nil client means
// http.DefaultClient.
func Do(client *http.Client, req *http.Request) (*Stream, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	lastEventID := req.Header.Get("Last-Event-ID")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
	ct := resp.Header.Get("Content-Type")
	// A malformed parameter does not hide the media type.
	mt, _, err := mime.ParseMediaType(ct)
	if (err != nil && err != mime.ErrInvalidMediaParameter) || mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("ssetest: Content-Type %q is not text/event-stream", ct)
	}
	return &Stream{Response: resp, p: NewParser(resp.Body), resume: lastEventID}, nil
}

// Next returns the next event from the stream. See Parser.Next.
func (s *Stream) Next() (Event, error) {
	return s.p.Next()
}

// Parser returns the stream's parser, to set OnComment or read Retry and
// LastEventID.
func (s *Stream) Parser() *Parser {
	return s.p
}

// Close closes the response body, ending the stream.
func (s *Stream) Close() error {
	return s.Response.Body.Close()
}

// LastEventID returns the ID a browser would send as Last-Event-ID when it
// reconnects after this stream: the one the stream last set, or, if it set
// none yet, the one it was opened with (a browser keeps its last event ID
// across reconnections).
func (s *Stream) LastEventID() string {
	if id := s.p.LastEventID(); id != "" {
		return id
	}
	return s.resume
}
