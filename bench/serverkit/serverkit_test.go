package serverkit

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParsePublish(t *testing.T) {
	ok := map[string]PublishRequest{
		"count=5":                                    {Count: 5},
		"count=5&rate=2.5&size=100":                  {Count: 5, Rate: 2.5, Size: 100},
		"count=0&rate=0&size=1048576":                {Size: 1 << 20},
		"count=1&topic=hot":                          {Count: 1, Topic: "hot"},
		"count=2&users=10&broadcast_every=100&log=1": {Count: 2, Users: 10, BroadcastEvery: 100, Log: true},
	}
	for q, want := range ok {
		v, _ := url.ParseQuery(q)
		got, err := ParsePublish(v.Get)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", q, got, err, want)
		}
	}
	for _, q := range []string{"", "count=-1", "count=x", "count=1&rate=-1", "count=1&size=2000000", "count=10000001",
		"count=1&users=-1", "count=1&users=x", "count=1&broadcast_every=-2", "count=1&topic=" + strings.Repeat("t", 257)} {
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

// TestTopicOf: a feed sends exactly every BroadcastEvery-th event to the
// broadcast topic and spreads the others evenly over the users.
func TestTopicOf(t *testing.T) {
	req := PublishRequest{Users: 100, BroadcastEvery: 10}
	per := map[string]int{}
	for s := uint64(1); s <= 100_000; s++ {
		per[req.TopicOf(s)]++
	}
	if per[BroadcastTopic] != 10_000 || len(per) != 101 {
		t.Fatalf("%d broadcast events, %d topics", per[BroadcastTopic], len(per))
	}
	for k := range 100 {
		if n := per[UserTopic(k)]; n < 800 || n > 1000 {
			t.Errorf("%s has %d events of 90 000, want about 900", UserTopic(k), n)
		}
	}
	if (&PublishRequest{Topic: "hot"}).TopicOf(7) != "hot" {
		t.Error("Topic ignored")
	}
}

// TestPublishLog: a request with Log records each event's sequence number,
// topic and ID, and /debug/published lists those after a given one.
func TestPublishLog(t *testing.T) {
	req := PublishRequest{Count: 30, Users: 3, BroadcastEvery: 4, Log: true}
	res := PublishTopics(req, func(topic string, _ []byte) (string, error) { return "id-" + topic, nil })
	after := res.First + 19
	rec := httptest.NewRecorder()
	PublishedHandler().ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/debug/published?after=%d", after), nil))
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines after %d: %q", len(lines), after, rec.Body.String())
	}
	for i, l := range lines {
		s := after + 1 + uint64(i)
		topic := req.TopicOf(s)
		if want := fmt.Sprintf("%d %s id-%s", s, topic, topic); l != want {
			t.Errorf("line %d: %q, want %q", i, l, want)
		}
	}
}
