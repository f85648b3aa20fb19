package serverkit

import (
	"net/url"
	"testing"
)

func TestParsePublish(t *testing.T) {
	ok := map[string]PublishRequest{
		"count=5":                     {Count: 5},
		"count=5&rate=2.5&size=100":   {Count: 5, Rate: 2.5, Size: 100},
		"count=0&rate=0&size=1048576": {Size: 1 << 20},
	}
	for q, want := range ok {
		v, _ := url.ParseQuery(q)
		got, err := ParsePublish(v.Get)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", q, got, err, want)
		}
	}
	for _, q := range []string{"", "count=-1", "count=x", "count=1&rate=-1", "count=1&size=2000000", "count=10000001"} {
		v, _ := url.ParseQuery(q)
		if _, err := ParsePublish(v.Get); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}

func TestPublishSequenceAndPacing(t *testing.T) {
	var got [][]byte
	res := Publish(PublishRequest{Count: 20, Rate: 1000, Size: 64}, func(d []byte) error {
		got = append(got, d)
		return nil
	})
	if res.Sent != 20 || res.Last != res.First+19 || len(got) != 20 || res.Errors != 0 {
		t.Fatalf("%+v, %d events", res, len(got))
	}
	// 20 events at 1000/s: the last is due after 19 ms.
	if res.ElapsedNS < 19e6 {
		t.Errorf("paced publish took %v ns", res.ElapsedNS)
	}
	next := Publish(PublishRequest{Count: 1}, func([]byte) error { return nil })
	if next.First != res.Last+1 {
		t.Errorf("sequence restarted: %d after %d", next.First, res.Last)
	}
}
