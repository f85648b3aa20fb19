// Package micro holds go test benchmarks of ssekit's hot paths next to the
// closest equivalent in a peer library, run in the same process:
//
//	cd bench && go test -run '^$' -bench . -benchmem ./micro
package micro

import (
	"bytes"
	"testing"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssekit/ssekit/core/sse"
)

const (
	benchID   = "3f9a0c1e-123456"
	benchType = "update"
	benchData = `{"user":"ada","action":"comment","post":4711,"text":"a short message of the usual size"}`
)

// BenchmarkEncode encodes one event, prepared beforehand, into a reused
// buffer: ssekit's AppendEvent, and go-sse's Message.WriteTo.
func BenchmarkEncode(b *testing.B) {
	b.Run("ssekit", func(b *testing.B) {
		ev := sse.Event{ID: benchID, Type: benchType, Data: []byte(benchData)}
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		b.SetBytes(int64(len(benchData)))
		for b.Loop() {
			var err error
			if buf, err = sse.AppendEvent(buf[:0], ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gosse", func(b *testing.B) {
		msg := &gosse.Message{ID: gosse.ID(benchID), Type: gosse.Type(benchType)}
		msg.AppendData(benchData)
		var buf bytes.Buffer
		buf.Grow(512)
		b.ReportAllocs()
		b.SetBytes(int64(len(benchData)))
		for b.Loop() {
			buf.Reset()
			if _, err := msg.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSameBytes checks that the two encoders are compared on the same
// work: both produce the same frame.
func TestSameBytes(t *testing.T) {
	a, err := sse.AppendEvent(nil, sse.Event{ID: benchID, Type: benchType, Data: []byte(benchData)})
	if err != nil {
		t.Fatal(err)
	}
	msg := &gosse.Message{ID: gosse.ID(benchID), Type: gosse.Type(benchType)}
	msg.AppendData(benchData)
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if string(a) != b.String() {
		t.Errorf("ssekit %q\ngo-sse %q", a, b.String())
	}
}
