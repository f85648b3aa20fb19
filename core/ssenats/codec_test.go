package ssenats_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
)

func FuzzCodec(f *testing.F) {
	f.Add(uint64(0), "", []byte(""), "", int64(0), uint8(0))
	f.Add(uint64(1<<40), "update", []byte(" a\r\nb\n"), " note", int64(1500*time.Millisecond), uint8(sse.EmptyComment))
	f.Fuzz(func(t *testing.T, prev uint64, typ string, data []byte, comment string, retry int64, flags uint8) {
		if retry < 0 {
			retry = -retry
		}
		ev := sse.Event{Type: typ, Data: data, Comment: comment, Retry: time.Duration(retry), Flags: sse.EventFlags(flags) &^ sse.NoData}
		b := ssenats.EncodeEvent(nil, prev, &ev)
		p, got, err := ssenats.DecodeEvent(b)
		if err != nil {
			t.Fatalf("DecodeEvent(EncodeEvent(%+v)): %v", ev, err)
		}
		if p != prev || got.Type != ev.Type || !bytes.Equal(got.Data, ev.Data) || got.Comment != ev.Comment || got.Retry != ev.Retry || got.Flags != ev.Flags {
			t.Fatalf("round trip of %+v (prev %d) gave %+v (prev %d)", ev, prev, got, p)
		}
		for n := range len(b) {
			_, _, _ = ssenats.DecodeEvent(b[:n]) // never panics
		}
	})
}

func TestDecodeRefuses(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {2, 0, 0, 0, 0, 0}, {1}, {1, 0}, {1, 0, 0, 0, 5, 'a'}} {
		if _, _, err := ssenats.DecodeEvent(b); err == nil {
			t.Errorf("DecodeEvent(%q): no error", b)
		}
	}
}
