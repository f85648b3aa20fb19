package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// StreamMatch selects open streams for Hub.EndStreams: the streams of a
// principal, the streams that follow a topic, or, with both set, the
// streams of the principal that follow the topic.
type StreamMatch struct {
	// Principal selects the streams of the principal with this ID
	// (Principal.ID, as Auth.Authenticate returned it).
	Principal string
	// Topic selects the streams that follow this topic.
	Topic string
}

// maxLastEvent bounds the last event of EndStreams, which is framed with
// the stream's final retry hint.
const maxLastEvent = 16 << 10

// EndStreams ends the open streams that m selects, attached and detached:
// after what is queued for them, each gets last, if it is not nil, and a
// retry hint (Options.CloseRetry), and ends. Use it when a user logs out
// or loses the right to a topic: a browser's EventSource then reconnects
// after the hint, and authentication or Authorize refuses it (401 or 403,
// which stop it for good); or the page, told by last, closes it itself.
//
// last is sent as it is, without an ID (it does not move the client's
// last event ID) and without being recorded. It must be valid (see
// Event), carry no ID and no retry hint (the hub's follows it), and encode
// to at most 16 KiB.
//
// With a Broadcaster store, EndStreams sends the order through it, so
// that it ends the selected streams on every hub that shares the store,
// this one included, as they receive it. If the store cannot carry it,
// EndStreams ends the streams of this hub and returns the store's error.
// Otherwise EndStreams returns once the order is given, not when the
// streams have ended; the Observer's StreamClosed sees each end, with
// EndRequested.
func (h *Hub) EndStreams(ctx context.Context, m StreamMatch, last *Event) error {
	if m.Principal == "" && m.Topic == "" {
		return errors.New("sse: EndStreams: StreamMatch selects no stream; set Principal, Topic or both")
	}
	var frame []byte
	if last != nil {
		if last.ID != "" || last.Flags&EmptyID != 0 {
			return errors.New("sse: EndStreams: the last event must have no ID; it would move the client's last event ID past the events it has not seen")
		}
		if last.Retry != 0 || last.Flags&RetryZero != 0 {
			return errors.New("sse: EndStreams: the last event must have no retry hint; the hub's (Options.CloseRetry) follows it")
		}
		if err := last.Validate(); err != nil {
			return fmt.Errorf("sse: EndStreams: %w", err)
		}
		frame = appendValid(nil, last)
		if len(frame) > maxLastEvent {
			return fmt.Errorf("sse: EndStreams: the last event encodes to %d bytes, more than %d", len(frame), maxLastEvent)
		}
	}
	if b, ok := h.store.(Broadcaster); ok && h.stopListen != nil {
		msg, _ := json.Marshal(signal{End: &endSignal{Principal: m.Principal, Topic: m.Topic, Last: frame}})
		if err := b.Signal(ctx, msg); err != nil {
			h.endLocal(m, frame)
			return fmt.Errorf("sse: EndStreams: the store did not carry the order to other hubs; ended this hub's streams only: %w", err)
		}
		return nil
	}
	h.endLocal(m, frame)
	return nil
}

// endLocal ends the streams of this hub that m selects.
func (h *Hub) endLocal(m StreamMatch, last []byte) {
	if m.Topic != "" {
		h.reg.eachOf(m.Topic, func(s *subscriber) {
			if s.matches(m) {
				s.endWith(EndRequested, last)
			}
		})
		return
	}
	h.reg.each(func(s *subscriber) {
		if s.matches(m) {
			s.endWith(EndRequested, last)
		}
	})
}

// signal is a message that hubs send each other through a Broadcaster.
type signal struct {
	End *endSignal `json:"end,omitempty"`
}

// endSignal is EndStreams' order.
type endSignal struct {
	Principal string `json:"principal,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Last      []byte `json:"last,omitempty"` // a frame
}
