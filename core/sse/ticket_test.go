package sse_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// ticketKey returns a 32-byte key made of b.
func ticketKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTickets(t testing.TB, key []byte) *sse.Tickets {
	t.Helper()
	tk, err := sse.NewTickets(key)
	if err != nil {
		t.Fatalf("NewTickets: %v", err)
	}
	return tk
}

func issue(t testing.TB, tk *sse.Tickets, id string, ttl time.Duration) string {
	t.Helper()
	ticket, err := tk.Issue(id, ttl)
	if err != nil {
		t.Fatalf("Issue(%q, %v): %v", id, ttl, err)
	}
	return ticket
}

func TestNewTicketsKeyLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31} {
		if tk, err := sse.NewTickets(make([]byte, n)); err == nil || tk != nil {
			t.Errorf("NewTickets(%d-byte key) = %v, %v; want an error", n, tk, err)
		}
	}
	if _, err := sse.NewTickets(nil); err == nil {
		t.Error("NewTickets(nil) succeeded")
	}
	for _, n := range []int{32, 64} {
		if _, err := sse.NewTickets(make([]byte, n)); err != nil {
			t.Errorf("NewTickets(%d-byte key): %v", n, err)
		}
	}
}

func TestNewTicketsCopiesKey(t *testing.T) {
	key := ticketKey(7)
	tk := newTickets(t, key)
	ticket := issue(t, tk, "alice", time.Minute)
	key[0] ^= 0xff // the caller reuses its buffer
	if id, err := tk.Verify(ticket); err != nil || id != "alice" {
		t.Errorf("after the caller changed its key slice: Verify = %q, %v", id, err)
	}
	if _, err := newTickets(t, key).Verify(ticket); !errors.Is(err, sse.ErrTicketInvalid) {
		t.Errorf("another key verified the ticket: %v", err)
	}
}

func TestTicketRoundTrip(t *testing.T) {
	tk := newTickets(t, ticketKey(1))
	same := newTickets(t, ticketKey(1)) // another instance sharing the key
	for _, id := range []string{"alice", "", "user.with.dots", "a/b?c=d&e", "ünïcødé ✓", "\x00\xff", strings.Repeat("x", 4096)} {
		ticket := issue(t, tk, id, time.Minute)
		if !strings.HasPrefix(ticket, "v1.") || strings.Count(ticket, ".") != 2 {
			t.Errorf("ticket %.40q is not v1.<payload>.<mac>", ticket)
		}
		if url.QueryEscape(ticket) != ticket {
			t.Errorf("ticket %.40q needs escaping in a URL", ticket)
		}
		for _, v := range []*sse.Tickets{tk, same} {
			if got, err := v.Verify(ticket); err != nil || got != id {
				t.Errorf("Verify(Issue(%.20q)) = %.20q, %v", id, got, err)
			}
		}
	}
}

func TestTicketIssueRejectsBadTTL(t *testing.T) {
	tk := newTickets(t, ticketKey(1))
	for _, ttl := range []time.Duration{0, -time.Second} {
		if ticket, err := tk.Issue("alice", ttl); err == nil || ticket != "" {
			t.Errorf("Issue(ttl %v) = %q, %v; want an error", ttl, ticket, err)
		}
	}
}

func TestTicketExpires(t *testing.T) {
	tk := newTickets(t, ticketKey(2))
	ticket := issue(t, tk, "alice", time.Second)
	if id, err := tk.Verify(ticket); err != nil || id != "alice" {
		t.Fatalf("fresh ticket: %q, %v", id, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := tk.Verify(ticket)
		if errors.Is(err, sse.ErrTicketExpired) {
			break
		}
		if err != nil {
			t.Fatalf("Verify: %v, want nil or ErrTicketExpired", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a ticket with a 1s ttl still verifies after 3s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id, err := tk.Authenticate(t.Context(), ticket); !errors.Is(err, sse.ErrTicketExpired) || id != (sse.Principal{}) {
		t.Errorf("Authenticate(expired) = %+v, %v", id, err)
	}
}

// TestTicketLivesForItsTTL: a ticket lives for its ttl, not for its ttl
// rounded to whole seconds. (With the expiry stored in Unix seconds,
// rounded down, a ticket lived up to a second less than its ttl, and one
// with a ttl under a second could be expired the moment it was issued.)
func TestTicketLivesForItsTTL(t *testing.T) {
	tk := newTickets(t, ticketKey(3))
	// In the first 300ms of a second, now+600ms is still in the same second:
	// rounding down would give an expiry in the past.
	testkit.Eventually(t, "the start of a second", func() bool { return time.Now().Nanosecond() < 3e8 })
	issued := time.Now()
	ticket := issue(t, tk, "alice", 600*time.Millisecond)
	if _, err := tk.Verify(ticket); err != nil {
		t.Fatalf("a ticket issued just now with a 600ms ttl: %v", err)
	}
	for {
		_, err := tk.Verify(ticket)
		if errors.Is(err, sse.ErrTicketExpired) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(issued) > 3*time.Second {
			t.Fatal("a ticket with a 600ms ttl still verifies after 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lived := time.Since(issued); lived < 550*time.Millisecond {
		t.Errorf("a ticket with a 600ms ttl expired after %v", lived)
	}
}

func TestTicketTampered(t *testing.T) {
	tk := newTickets(t, ticketKey(4))
	ticket := issue(t, tk, "alice", time.Hour)
	bobs := issue(t, tk, "bob", time.Hour)
	parts := strings.Split(ticket, ".")
	bobParts := strings.Split(bobs, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := issue(t, newTickets(t, ticketKey(5)), "alice", time.Hour)
	tests := map[string]string{
		"payload first char":   parts[0] + "." + flip(parts[1], 0) + "." + parts[2],
		"payload last char":    parts[0] + "." + flip(parts[1], len(parts[1])-1) + "." + parts[2],
		"payload of another":   parts[0] + "." + bobParts[1] + "." + parts[2],
		"signature first char": parts[0] + "." + parts[1] + "." + flip(parts[2], 0),
		"signature of another": parts[0] + "." + parts[1] + "." + bobParts[2],
		"signature truncated":  ticket[:len(ticket)-4],
		"signature extended":   ticket + "AAAA",
		"signature doubled":    ticket + "." + parts[2],
		"signature padded":     ticket + "=",
		"signature removed":    parts[0] + "." + parts[1],
		"other key":            other,
		"version changed":      "v2." + parts[1] + "." + parts[2],
		"leading space":        " " + ticket,
		"trailing space":       ticket + " ",
		"upper-case prefix":    "V1." + parts[1] + "." + parts[2],
		"standard base64 sig":  parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+",
	}
	for name, bad := range tests {
		if id, err := tk.Verify(bad); !errors.Is(err, sse.ErrTicketInvalid) {
			t.Errorf("%s: Verify(%q) = %q, %v; want ErrTicketInvalid", name, bad, id, err)
		}
	}
}

// TestTicketSignatureIsNotMalleable: a ticket verifies only as Issue
// spelled it. A lenient base64 decoding of the MAC would accept other
// spellings: the MAC is 32 bytes, 43 characters whose last one carries 2
// unused bits, which the lenient decoder ignores (3 other last characters
// would work), and the decoder skips CR and LF anywhere in its input.
func TestTicketSignatureIsNotMalleable(t *testing.T) {
	tk := newTickets(t, ticketKey(6))
	ticket := issue(t, tk, "alice", time.Hour)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var lastChar []string
	for _, c := range alphabet {
		variant := ticket[:len(ticket)-1] + string(c)
		if variant == ticket {
			continue
		}
		if _, err := tk.Verify(variant); err == nil {
			lastChar = append(lastChar, variant[len(variant)-3:])
		}
	}
	if len(lastChar) > 0 {
		t.Errorf("ticket ending %q: %d other spellings verify too (endings %q)", ticket[len(ticket)-3:], len(lastChar), lastChar)
	}
	sig := strings.LastIndexByte(ticket, '.') + 1
	for name, variant := range map[string]string{
		"trailing LF":          ticket + "\n",
		"trailing CRLF":        ticket + "\r\n",
		"LF inside the MAC":    ticket[:sig+10] + "\n" + ticket[sig+10:],
		"CR before the MAC":    ticket[:sig] + "\r" + ticket[sig:],
		"LFs all over the MAC": ticket[:sig] + strings.Join(strings.Split(ticket[sig:], ""), "\n"),
	} {
		if _, err := tk.Verify(variant); err == nil {
			t.Errorf("%s: Verify(%q) succeeded", name, variant)
		}
	}
}

func TestTicketMalformed(t *testing.T) {
	tk := newTickets(t, ticketKey(8))
	junk := strings.Repeat("v1.%$#", 10<<10/6)
	tests := []string{
		"", ".", "..", "v1", "v1.", "v1..", "v1...", "v1.x", "v1.x.", "v1..x", "v2.a.b", "v1.!!!.???",
		"v1.a.b.c", "v1.AAAA.AAAA", "v1.AAAAAAAAAAA.", "v1.\x00.\x00", "v1.\xff\xfe.\xff",
		junk, "v1." + strings.Repeat("A", 10<<10) + "." + strings.Repeat("A", 43),
		strings.Repeat(".", 10<<10),
	}
	for _, bad := range tests {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Verify(%.40q) panicked: %v", bad, r)
				}
			}()
			if id, err := tk.Verify(bad); !errors.Is(err, sse.ErrTicketInvalid) || id != "" {
				t.Errorf("Verify(%.40q) = %q, %v; want ErrTicketInvalid", bad, id, err)
			}
		}()
	}
}

// ticketLayout is how Issue lays out a ticket's payload: an 8-byte
// big-endian expiry in units of unit since the Unix epoch, then the ID.
type ticketLayout struct {
	key  []byte
	unit time.Duration
}

// learnTicketLayout finds the expiry unit (seconds or milliseconds) of
// Issue's payload and checks that craft reproduces Issue's signature, so
// that tests can make tickets Issue cannot: expired ones, short payloads.
// It skips the test if the layout is not one it knows.
func learnTicketLayout(t *testing.T, key []byte) ticketLayout {
	t.Helper()
	exp := time.Now().Add(time.Hour)
	real := issue(t, newTickets(t, key), "probe", time.Hour)
	parts := strings.Split(real, ".")
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || len(p) != 8+len("probe") || string(p[8:]) != "probe" {
		t.Skipf("the ticket layout is not the one this test knows: %q", real)
	}
	l := ticketLayout{key: key}
	v := int64(binary.BigEndian.Uint64(p))
	switch {
	case abs(v-exp.Unix()) <= 5:
		l.unit = time.Second
	case abs(v-exp.UnixMilli()) <= 5000:
		l.unit = time.Millisecond
	default:
		t.Skipf("ticket expiry %d is neither Unix seconds nor milliseconds", v)
	}
	if l.craft(p) != real {
		t.Skipf("the ticket signature is not HMAC-SHA256 of \"v1.<payload>\": %q", real)
	}
	return l
}

func abs(v int64) int64 { return max(v, -v) }

// craft signs payload as Issue does.
func (l ticketLayout) craft(payload []byte) string {
	body := "v1." + base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// payload lays out an expiry and an ID.
func (l ticketLayout) payload(exp time.Time, id string) []byte {
	n := exp.Unix()
	if l.unit == time.Millisecond {
		n = exp.UnixMilli()
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(n)), id...)
}

func TestTicketCrafted(t *testing.T) {
	key := ticketKey(9)
	tk := newTickets(t, key)
	l := learnTicketLayout(t, key)
	tests := []struct {
		name    string
		payload []byte
		want    error
		id      string
	}{
		{"valid", l.payload(time.Now().Add(time.Hour), "carol"), nil, "carol"},
		{"empty id", l.payload(time.Now().Add(time.Hour), ""), nil, ""},
		{"valid for 2 more seconds", l.payload(time.Now().Add(2*time.Second), "carol"), nil, "carol"},
		{"expired", l.payload(time.Now().Add(-time.Minute), "carol"), sse.ErrTicketExpired, ""},
		{"just expired", l.payload(time.Now().Add(-time.Second), "carol"), sse.ErrTicketExpired, ""},
		{"expired long ago", l.payload(time.Unix(1, 0), "carol"), sse.ErrTicketExpired, ""},
		{"expiry before 1970", l.payload(time.Unix(-5, 0), "carol"), sse.ErrTicketExpired, ""},
		{"empty payload", nil, sse.ErrTicketInvalid, ""},
		{"7-byte payload", make([]byte, 7), sse.ErrTicketInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tk.Verify(l.craft(tt.payload))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || id != tt.id {
				t.Errorf("Verify = %q, %v; want %q, %v", id, err, tt.id, tt.want)
			}
		})
	}
}

// TestTicketsAuthenticateOverHTTP: Tickets.Authenticate as Auth.Authenticate,
// with the ticket in the query, as an EventSource sends it.
func TestTicketsAuthenticateOverHTTP(t *testing.T) {
	testkit.CheckGoroutines(t)
	key := ticketKey(10)
	tk := newTickets(t, key)
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: tk.Authenticate, QueryParam: "ticket"},
		Topics: func(r *http.Request) ([]string, error) {
			p, _ := sse.PrincipalFrom(r.Context())
			return []string{"user/" + p.ID}, nil
		},
	})
	l := learnTicketLayout(t, key)
	ticket := issue(t, tk, "alice", time.Minute)
	st := connect(t, srv.URL+"/events?ticket="+url.QueryEscape(ticket), "")
	// A ticket is a bearer token: the header works too.
	hs := connectWith(t, srv.URL+"/events", "", hdr("Authorization", "Bearer "+ticket))
	testkit.WaitStreams(t, h, 2)
	if got := h.Subscribers("user/alice"); got != 2 {
		t.Fatalf("%d streams on user/alice, want 2", got)
	}
	testkit.Publish(t, h, "user/bob", "not for alice")
	testkit.Publish(t, h, "user/alice", "for alice")
	if ev := next(t, st); ev.Data != "for alice" {
		t.Errorf("query ticket stream got %q", ev.Data)
	}
	if ev := next(t, hs); ev.Data != "for alice" {
		t.Errorf("header ticket stream got %q", ev.Data)
	}

	parts := strings.Split(ticket, ".")
	for name, bad := range map[string]string{
		"other key": issue(t, newTickets(t, ticketKey(11)), "alice", time.Minute),
		"tampered":  parts[0] + "." + parts[1] + "A." + parts[2],
		"garbage":   "v1.!!!.???",
		"expired":   l.craft(l.payload(time.Now().Add(-time.Second), "alice")),
	} {
		rep := request(t, http.MethodGet, srv.URL+"/events?ticket="+url.QueryEscape(bad), nil)
		checkNoStream(t, rep)
		if rep.status != http.StatusUnauthorized || !strings.HasPrefix(rep.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s ticket: got %d %q, want 401 with a challenge", name, rep.status, rep.body)
		}
	}
}

// FuzzTicketVerify: Verify never panics and accepts only tickets as Issue
// returned them.
//
// Fuzzing runs the target in several processes, each issuing its own
// tickets, so a ticket from the seed corpus may have been issued by another
// process with the same key. Hence two checks:
//   - the input itself: if it verifies, it must be spelled canonically
//     (v1, then two parts in unpadded base64url that decode and re-encode
//     to themselves), and if this process issued it, Verify returns its ID;
//   - a mutation of a ticket this process issued (cut bytes at pos,
//     insert there): it verifies only if it is that ticket unchanged.
func FuzzTicketVerify(f *testing.F) {
	tk := newTickets(f, ticketKey(12))
	var issued []string
	ids := map[string]string{} // ticket → id
	for _, id := range []string{"alice", "", "bob.with.dots", "ü", strings.Repeat("z", 300)} {
		ticket := issue(f, tk, id, 24*time.Hour)
		issued = append(issued, ticket)
		ids[ticket] = id
	}
	for i, ticket := range issued {
		n := uint16(len(ticket))
		f.Add(ticket, uint16(i), "", uint8(0))
		f.Add(ticket[:len(ticket)-1], uint16(i), "A", uint8(1))
		f.Add(ticket+"A", n-1, "B", uint8(1))
		f.Add(strings.Replace(ticket, ".", "..", 1), n, "\n", uint8(0))
		f.Add(ticket[:5]+"_"+ticket[6:], uint16(4), ".", uint8(2))
	}
	for _, s := range []string{"", "v1.", "v1..", "v1.x", "v2.a.b", "v1.!!!.???", "v1.AAAAAAAAAAA.AAAA", strings.Repeat("v1.", 100)} {
		f.Add(s, uint16(0), s, uint8(3))
	}
	canonical := func(ticket string) bool {
		parts := strings.Split(ticket, ".")
		if len(parts) != 3 || parts[0] != "v1" {
			return false
		}
		for _, p := range parts[1:] {
			b, err := base64.RawURLEncoding.Strict().DecodeString(p)
			if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, ticket string, pos uint16, insert string, cut uint8) {
		id, err := tk.Verify(ticket)
		switch want, ok := ids[ticket]; {
		case ok && (err != nil || id != want):
			t.Errorf("Verify(issued ticket for %q) = %q, %v", want, id, err)
		case err == nil && !canonical(ticket):
			t.Errorf("Verify(%q) = %q, nil: it accepts a spelling Issue never returns", ticket, id)
		case err != nil && !errors.Is(err, sse.ErrTicketInvalid) && !errors.Is(err, sse.ErrTicketExpired):
			t.Errorf("Verify(%q): error %v is neither ErrTicketInvalid nor ErrTicketExpired", ticket, err)
		}

		base := issued[int(pos)%len(issued)]
		i := int(pos) % (len(base) + 1)
		mutated := base[:i] + insert + base[min(i+int(cut), len(base)):]
		id, err = tk.Verify(mutated)
		if mutated == base {
			if err != nil || id != ids[base] {
				t.Errorf("Verify(issued ticket for %q) = %q, %v", ids[base], id, err)
			}
		} else if err == nil {
			t.Errorf("Verify(%q) = %q, nil: it accepts a changed ticket (%q, with %d bytes at %d replaced by %q)", mutated, id, base, cut, i, insert)
		}
	})
}
