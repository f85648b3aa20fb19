package ssenats

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// A message's payload is the event and the Seq of its topic's previous
// event:
//
//	version byte (1)
//	uvarint prev     the Seq of the topic's previous event, 0 if none was left
//	byte    flags    sse.EventFlags
//	uvarint retry    nanoseconds
//	uvarint len, type
//	uvarint len, comment
//	data             the rest
//
// Keeping the fields in the payload, not in NATS headers, keeps them
// byte for byte (header values lose leading spaces).
const codecVersion = 1

var errCodec = errors.New("ssenats: not an event this version of ssenats stored")

func encodeEvent(dst []byte, prev uint64, ev *sse.Event) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, prev)
	dst = append(dst, byte(ev.Flags))
	dst = binary.AppendUvarint(dst, uint64(ev.Retry))
	dst = binary.AppendUvarint(dst, uint64(len(ev.Type)))
	dst = append(dst, ev.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(ev.Comment)))
	dst = append(dst, ev.Comment...)
	return append(dst, ev.Data...)
}

// decodeEvent decodes a payload; the event's Data is a copy.
func decodeEvent(b []byte) (prev uint64, ev sse.Event, err error) {
	if len(b) < 2 || b[0] != codecVersion {
		return 0, ev, errCodec
	}
	b = b[1:]
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			err = errCodec
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uv()
		if err != nil || n > uint64(len(b)) {
			err = errCodec
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	prev = uv()
	if err != nil || len(b) == 0 {
		return 0, ev, errCodec
	}
	ev.Flags = sse.EventFlags(b[0])
	b = b[1:]
	ev.Retry = time.Duration(uv())
	ev.Type = str()
	ev.Comment = str()
	if err != nil {
		return 0, sse.Event{}, err
	}
	if ev.Flags&sse.NoData == 0 {
		ev.Data = append(make([]byte, 0, len(b)), b...)
	}
	return prev, ev, nil
}
