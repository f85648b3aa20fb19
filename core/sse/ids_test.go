package sse

import (
	"errors"
	"slices"
	"testing"
)

func TestIDs(t *testing.T) {
	tests := []struct {
		pos     []uint64
		ordered bool
		want    string
	}{
		{[]uint64{42}, false, "ep-42"},
		{[]uint64{0}, false, "ep-0"},
		{[]uint64{3, 9, 1}, true, "ep-9"},
		{[]uint64{3, 9, 1}, false, "ep-3.9.1"},
	}
	for _, tt := range tests {
		id := string(appendID(nil, "ep", tt.pos, tt.ordered))
		if id != tt.want {
			t.Errorf("appendID(%v, %v) = %q, want %q", tt.pos, tt.ordered, id, tt.want)
		}
		back, err := parseID(id, "ep", len(tt.pos), tt.ordered)
		want := tt.pos
		if tt.ordered {
			want = []uint64{9, 9, 9}
		}
		if err != nil || !slices.Equal(back, want) {
			t.Errorf("parseID(%q) = %v, %v; want %v", id, back, err, want)
		}
	}
	for _, bad := range []string{"", "ep", "ep-", "ep-x", "ep-01", "ep-+1", "other-1", "ep-1.2", "ep-1..2.3", "ep-1.2.3.4", "ep-18446744073709551616", "ep1-1"} {
		if pos, err := parseID(bad, "ep", 3, true); !errors.Is(err, ErrUnknownID) {
			t.Errorf("parseID(%q) = %v, %v; want ErrUnknownID", bad, pos, err)
		}
	}
	// One Seq is a place in every topic only where all topics share the
	// Seqs; elsewhere it is a place in another stream's one topic.
	if pos, err := parseID("ep-7", "ep", 2, false); !errors.Is(err, ErrUnknownID) {
		t.Errorf("parseID of one Seq for two topics of a store that numbers each topic = %v, %v; want ErrUnknownID", pos, err)
	}
}
