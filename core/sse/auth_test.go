package sse_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// Helpers shared by auth_test.go, ticket_test.go, cors_test.go,
// limits_test.go and observer_test.go.

// hdr builds request headers from key, value pairs; empty values are left
// out.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Add(kv[i], kv[i+1])
		}
	}
	return h
}

// reply is a complete answer to a request that is not an open stream.
type reply struct {
	status int
	header http.Header
	body   string
}

// request sends method url with headers h and reads the whole body within
// 5 s. Use it for answers that end: refusals, preflights and TryLater. An
// open stream where an ending answer was expected fails the test.
func request(t *testing.T, method, url string, h http.Header) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: status %d, reading the body: %v (an open stream where a refusal was expected?)", method, url, resp.StatusCode, err)
	}
	return reply{resp.StatusCode, resp.Header, string(body)}
}

// checkNoStream fails the test unless rep is a refusal sent before any
// stream byte: a status other than 200 and no event stream.
func checkNoStream(t *testing.T, rep reply) {
	t.Helper()
	if rep.status == http.StatusOK {
		t.Errorf("status 200, want a refusal")
	}
	if ct := rep.header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("refusal with Content-Type %q", ct)
	}
	if strings.Contains(rep.body, ": ok") || strings.Contains(rep.body, "retry:") {
		t.Errorf("refusal body looks like a stream: %q", rep.body)
	}
}

// headerTransport adds headers to every request, like a client that sends
// a cookie or an Authorization header.
type headerTransport struct{ h http.Header }

func (ht headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range ht.h {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// connectWith is connect with extra request headers.
func connectWith(t *testing.T, url, lastID string, h http.Header) *ssetest.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	st, err := ssetest.Connect(ctx, &http.Client{Transport: headerTransport{h}}, url, lastID)
	if err != nil {
		cancel()
		t.Fatalf("Connect(%s): %v", url, err)
	}
	t.Cleanup(func() { st.Close(); cancel() })
	return st
}

// tokenAuth authenticates tokens "tok-<id>" as principal <id>.
func tokenAuth(_ context.Context, token string) (sse.Principal, error) {
	id, ok := strings.CutPrefix(token, "tok-")
	if !ok || id == "" {
		return sse.Principal{}, errors.New("unknown token")
	}
	return sse.Principal{ID: id, Data: "data of " + id}, nil
}

// whoAmI is a Topics hook that ends the request with 418 and the
// principal's ID (or "<none>") as the body: tests of authentication read
// the principal without opening a stream.
func whoAmI(r *http.Request) ([]string, error) {
	p, ok := sse.PrincipalFrom(r.Context())
	if !ok {
		return nil, sse.Refuse(http.StatusTeapot, "<none>")
	}
	return nil, sse.Refuse(http.StatusTeapot, "principal="+p.ID)
}

func TestAuthToken(t *testing.T) {
	full := &sse.Auth{CookieName: "sid", QueryParam: "access_token"}
	noQuery := &sse.Auth{CookieName: "sid"}
	noCookie := &sse.Auth{QueryParam: "access_token"}
	tests := []struct {
		name          string
		auth          *sse.Auth
		authorization string
		cookie        string
		query         string
		token, source string
	}{
		{"header beats cookie and query", full, "Bearer tok-h", "sid=tok-c", "access_token=tok-q", "tok-h", "header"},
		{"cookie beats query", full, "", "sid=tok-c", "access_token=tok-q", "tok-c", "cookie"},
		{"query alone", full, "", "", "access_token=tok-q", "tok-q", "query"},
		{"scheme lower case", full, "bearer tok-h", "sid=tok-c", "", "tok-h", "header"},
		{"scheme upper case", full, "BEARER tok-h", "", "", "tok-h", "header"},
		{"scheme mixed case", full, "BeArEr tok-h", "", "", "tok-h", "header"},
		{"spaces around the token", full, "Bearer   tok-h  ", "", "", "tok-h", "header"},
		{"Basic is ignored, cookie used", full, "Basic dXNlcjpwdw==", "sid=tok-c", "", "tok-c", "cookie"},
		{"Basic is ignored, nothing else", full, "Basic x", "", "", "", ""},
		{"Bearer without a token", full, "Bearer", "", "access_token=tok-q", "tok-q", "query"},
		{"Bearer with only spaces falls through", full, "Bearer    ", "sid=tok-c", "", "tok-c", "cookie"},
		{"other cookie ignored", full, "", "other=tok-c", "", "", ""},
		{"empty cookie ignored", full, "", "sid=", "access_token=tok-q", "tok-q", "query"},
		{"query ignored without QueryParam", noQuery, "", "", "access_token=tok-q", "", ""},
		{"cookie ignored without CookieName", noCookie, "", "sid=tok-c", "", "", ""},
		{"empty query value", full, "", "", "access_token=", "", ""},
		{"first query value", full, "", "", "access_token=tok-1&access_token=tok-2", "tok-1", "query"},
		{"nothing", full, "", "", "", "", ""},
	}
	// Over HTTP too: Authenticate must get the token Token picks.
	h := ssetest.NewHub(t, sse.Options{})
	var seen sync.Map // token → true
	authenticate := func(ctx context.Context, token string) (sse.Principal, error) {
		seen.Store(token, true)
		return tokenAuth(ctx, token)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := *tt.auth
			a.Authenticate = authenticate
			srv := serve(t, h, sse.HandlerOptions{Auth: &a, Topics: whoAmI})
			rep := request(t, http.MethodGet, srv.URL+"/events?"+tt.query, hdr("Authorization", tt.authorization, "Cookie", tt.cookie))
			checkNoStream(t, rep)
			if tt.token == "" {
				if rep.status != http.StatusUnauthorized {
					t.Errorf("no token: got %d %q, want 401", rep.status, rep.body)
				}
				return
			}
			if want := "principal=" + strings.TrimPrefix(tt.token, "tok-") + "\n"; rep.status != http.StatusTeapot || rep.body != want {
				t.Errorf("got %d %q, want 418 %q", rep.status, rep.body, want)
			}
			if _, ok := seen.Load(tt.token); !ok {
				t.Errorf("Authenticate never saw %q", tt.token)
			}
		})
	}
}

func TestAuthRefusals(t *testing.T) {
	teapot := func(context.Context, string) (sse.Principal, error) {
		return sse.Principal{}, sse.Refuse(http.StatusTeapot, "short and stout")
	}
	wrapped := func(context.Context, string) (sse.Principal, error) {
		return sse.Principal{}, errors.Join(errors.New("lookup"), sse.Refuse(http.StatusPaymentRequired, "pay first"))
	}
	deny := func(_ context.Context, p sse.Principal, topics []string) error {
		if slices.Contains(topics, "secret") {
			return errors.New("not for " + p.ID)
		}
		return nil
	}
	denyLater := func(context.Context, sse.Principal, []string) error {
		return sse.Refuse(http.StatusNotFound, "no such topic")
	}
	tests := []struct {
		name     string
		auth     sse.Auth
		query    string
		h        http.Header
		status   int
		body     string // substring of the body
		wwwAuth  bool
		explains bool // the body must say something
	}{
		{"no token", sse.Auth{Authenticate: tokenAuth}, "topic=t", nil, 401, "missing token", true, true},
		{"bad token", sse.Auth{Authenticate: tokenAuth}, "topic=t", hdr("Authorization", "Bearer nope"), 401, "invalid or expired token", true, true},
		{"bad token, Optional", sse.Auth{Authenticate: tokenAuth, Optional: true}, "topic=t", hdr("Authorization", "Bearer nope"), 401, "invalid", true, true},
		{"bad cookie, Optional", sse.Auth{Authenticate: tokenAuth, Optional: true, CookieName: "sid"}, "topic=t", hdr("Cookie", "sid=nope"), 401, "invalid", true, true},
		{"Refuse from Authenticate", sse.Auth{Authenticate: teapot}, "topic=t", hdr("Authorization", "Bearer tok-a"), 418, "short and stout", false, true},
		{"wrapped Refuse from Authenticate", sse.Auth{Authenticate: wrapped}, "topic=t", hdr("Authorization", "Bearer tok-a"), 402, "pay first", false, true},
		{"Authorize error", sse.Auth{Authenticate: tokenAuth, Authorize: deny}, "topic=t&topic=secret", hdr("Authorization", "Bearer tok-a"), 403, "not allowed", false, true},
		{"Refuse from Authorize", sse.Auth{Authenticate: tokenAuth, Authorize: denyLater}, "topic=t", hdr("Authorization", "Bearer tok-a"), 404, "no such topic", false, true},
		{"no Authenticate, with a token", sse.Auth{}, "topic=t", hdr("Authorization", "Bearer tok-a"), 500, "internal error", false, true},
		{"no Authenticate, no token", sse.Auth{}, "topic=t", nil, 401, "missing token", true, true},
		{"query token without QueryParam", sse.Auth{Authenticate: tokenAuth}, "topic=t&access_token=tok-a", nil, 401, "missing token", true, true},
	}
	h := ssetest.NewHub(t, sse.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, h, sse.HandlerOptions{Auth: &tt.auth})
			rep := request(t, http.MethodGet, srv.URL+"/events?"+tt.query, tt.h)
			checkNoStream(t, rep)
			if rep.status != tt.status || !strings.Contains(rep.body, tt.body) {
				t.Errorf("got %d %q, want %d and a body with %q", rep.status, rep.body, tt.status, tt.body)
			}
			if tt.explains && strings.TrimSpace(rep.body) == "" {
				t.Errorf("empty body: a refusal must explain itself")
			}
			got := rep.header.Get("WWW-Authenticate")
			if tt.wwwAuth && !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			if !tt.wwwAuth && got != "" {
				t.Errorf("WWW-Authenticate = %q on a %d", got, rep.status)
			}
		})
	}
	testkit.WaitStreams(t, h, 0)
}

func TestAuthOptional(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	var mu sync.Mutex
	var got []sse.Principal
	srv := serve(t, h, sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: tokenAuth, Optional: true, CookieName: "sid"},
		Topics: func(r *http.Request) ([]string, error) {
			p, ok := sse.PrincipalFrom(r.Context())
			if !ok {
				return nil, sse.Refuse(http.StatusInternalServerError, "no principal in the context")
			}
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
			return []string{"t"}, nil
		},
	})
	anon := connect(t, srv.URL, "")
	alice := connectWith(t, srv.URL, "", hdr("Cookie", "sid=tok-alice"))
	testkit.WaitStreams(t, h, 2)
	mu.Lock()
	if len(got) != 2 || got[0] != (sse.Principal{}) || got[1].ID != "alice" {
		t.Errorf("principals %+v, want the zero Principal, then alice", got)
	}
	mu.Unlock()
	testkit.Publish(t, h, "t", "hello")
	for _, st := range []*ssetest.Stream{anon, alice} {
		if ev := next(t, st); ev.Data != "hello" {
			t.Errorf("got %+v", ev)
		}
	}
}

// TestAuthPerUserTopic: the Topics hook picks the principal's own topic.
func TestAuthPerUserTopic(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{
		Auth: &sse.Auth{Authenticate: tokenAuth, CookieName: "sid"},
		Topics: func(r *http.Request) ([]string, error) {
			p, ok := sse.PrincipalFrom(r.Context())
			if !ok || p.ID == "" || p.Data != "data of "+p.ID {
				return nil, sse.Refuse(http.StatusInternalServerError, "no principal")
			}
			return []string{"user/" + p.ID, "all"}, nil
		},
	})
	alice := connectWith(t, srv.URL, "", hdr("Cookie", "sid=tok-alice"))
	bob := connectWith(t, srv.URL, "", hdr("Authorization", "Bearer tok-bob"))
	testkit.WaitStreams(t, h, 2)
	if a, b, all := h.Subscribers("user/alice"), h.Subscribers("user/bob"), h.Subscribers("all"); a != 1 || b != 1 || all != 2 {
		t.Fatalf("subscribers: user/alice %d, user/bob %d, all %d", a, b, all)
	}
	testkit.Publish(t, h, "user/bob", "for bob")
	testkit.Publish(t, h, "user/alice", "for alice")
	testkit.Publish(t, h, "all", "for all")
	for _, c := range []struct {
		st   *ssetest.Stream
		want []string
	}{{alice, []string{"for alice", "for all"}}, {bob, []string{"for bob", "for all"}}} {
		for _, w := range c.want {
			if ev := next(t, c.st); ev.Data != w {
				t.Errorf("got %q, want %q", ev.Data, w)
			}
		}
	}
}

func TestAuthorizeGetsPrincipalAndDedupedTopics(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	type call struct {
		p      sse.Principal
		topics []string
		hasP   bool
	}
	calls := make(chan call, 4)
	srv := serve(t, h, sse.HandlerOptions{Auth: &sse.Auth{
		Authenticate: tokenAuth,
		Authorize: func(ctx context.Context, p sse.Principal, topics []string) error {
			ctxP, ok := sse.PrincipalFrom(ctx)
			calls <- call{p, slices.Clone(topics), ok && ctxP.ID == p.ID}
			return nil
		},
	}})
	connectWith(t, srv.URL+"?topic=b&topic=a&topic=b&topic=a&topic=c", "", hdr("Authorization", "Bearer tok-alice"))
	select {
	case c := <-calls:
		if c.p.ID != "alice" || c.p.Data != "data of alice" {
			t.Errorf("Authorize got principal %+v", c.p)
		}
		if !slices.Equal(c.topics, []string{"a", "b", "c"}) {
			t.Errorf("Authorize got topics %q, want [a b c], deduplicated and sorted", c.topics)
		}
		if !c.hasP {
			t.Errorf("Authorize's context does not carry the principal")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Authorize was not called")
	}
}

// TestAuthPrincipalFromAdapter: a router adapter's middleware authenticated
// the request and put the principal in the context. The handler does not
// authenticate again, but still authorizes.
func TestAuthPrincipalFromAdapter(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	var authentications atomic.Int32
	authorized := make(chan sse.Principal, 8)
	inner := h.Handler(sse.HandlerOptions{Auth: &sse.Auth{
		Authenticate: func(ctx context.Context, token string) (sse.Principal, error) {
			authentications.Add(1)
			return tokenAuth(ctx, token)
		},
		Authorize: func(_ context.Context, p sse.Principal, topics []string) error {
			authorized <- p
			if slices.Contains(topics, "secret") {
				return errors.New("no")
			}
			return nil
		},
	}})
	adapter := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := sse.Principal{ID: "from-adapter"}
		inner.ServeHTTP(w, r.WithContext(sse.WithPrincipal(r.Context(), p)))
	})
	srv := httptest.NewServer(adapter)
	t.Cleanup(srv.Close)

	// No token at all, and a token that Authenticate would reject: neither
	// is looked at.
	connect(t, srv.URL+"?topic=public", "")
	connectWith(t, srv.URL+"?topic=public", "", hdr("Authorization", "Bearer garbage"))
	testkit.WaitStreams(t, h, 2)
	rep := request(t, http.MethodGet, srv.URL+"?topic=secret", nil)
	checkNoStream(t, rep)
	if rep.status != http.StatusForbidden {
		t.Errorf("secret topic: got %d %q, want 403", rep.status, rep.body)
	}
	if n := authentications.Load(); n != 0 {
		t.Errorf("Authenticate called %d times for requests that carry a principal", n)
	}
	for range 3 {
		select {
		case p := <-authorized:
			if p.ID != "from-adapter" {
				t.Errorf("Authorize got %+v, want the adapter's principal", p)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Authorize was not called for each request")
		}
	}
}

// TestAuthMiddlewareForOtherHandlers: AuthMiddleware authenticates any
// handler, not only streams; it finds the principal with PrincipalFrom.
func TestAuthMiddlewareForOtherHandlers(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	a := &sse.Auth{Authenticate: tokenAuth, CookieName: "sid"}
	srv := serveHandler(t, sse.AuthMiddleware(h, a)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := sse.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte(p.ID))
	})))
	if resp, body := testkit.Request(t, "GET", srv.URL, hdr("Cookie", "sid=tok-carol")); resp.StatusCode != 200 || body != "carol" {
		t.Errorf("with the cookie: %d %q, want carol", resp.StatusCode, body)
	}
	if resp, _ := testkit.Request(t, "GET", srv.URL, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", resp.StatusCode)
	}
}

func TestRedactQuery(t *testing.T) {
	tests := []struct {
		name, url string
		params    []string
		want      string
	}{
		{"no query", "https://h.example/events", []string{"ticket"}, "https://h.example/events"},
		{"no params named", "https://h.example/events?ticket=s3cret", nil, "https://h.example/events?ticket=s3cret"},
		{"param absent", "https://h.example/events?topic=a&lastEventId=x-1", []string{"ticket"}, "https://h.example/events?topic=a&lastEventId=x-1"},
		{"one value", "/events?ticket=s3cret", []string{"ticket"}, "/events?ticket=REDACTED"},
		{"several values", "/events?ticket=one&ticket=two&ticket=three", []string{"ticket"}, "/events?ticket=REDACTED&ticket=REDACTED&ticket=REDACTED"},
		{"empty value", "/events?ticket=", []string{"ticket"}, "/events?ticket=REDACTED"},
		{"other params kept as they were", "/events?topic=a&ticket=s3cret&topic=b&lastEventId=e-7", []string{"ticket"}, "/events?topic=a&ticket=REDACTED&topic=b&lastEventId=e-7"},
		{"several params", "/events?ticket=s1&access_token=s2&topic=a", []string{"ticket", "access_token", "absent"}, "/events?ticket=REDACTED&access_token=REDACTED&topic=a"},
		{"escaped value", "/events?ticket=a%2Fb%3Dc&topic=x%20y", []string{"ticket"}, "/events?ticket=REDACTED&topic=x%20y"},
		{"escaped key", "/events?tick%65t=s3cret", []string{"ticket"}, "/events?ticket=REDACTED"},
		{"key without value", "/events?ticket&topic=a", []string{"ticket"}, "/events?ticket=REDACTED&topic=a"},
		{"empty pairs", "/events?&&ticket=s3cret&", []string{"ticket"}, "/events?&&ticket=REDACTED&"},
		{"case matters", "/events?Ticket=s3cret", []string{"ticket"}, "/events?Ticket=s3cret"},
		{"fragment kept", "/events?ticket=s3cret#frag", []string{"ticket"}, "/events?ticket=REDACTED#frag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			before := u.String()
			got := sse.RedactQuery(u, tt.params...)
			if got != tt.want {
				t.Errorf("RedactQuery = %q, want %q", got, tt.want)
			}
			if u.String() != before {
				t.Errorf("RedactQuery changed its argument: %q, was %q", u.String(), before)
			}
		})
	}
}

// TestRedactQueryHidesUnparsableValues: a redaction helper must fail
// closed. Finding the parameters with url.Values would miss pairs that it
// silently drops (a stray '%', a ';'), and the raw query, secret included,
// would be logged as it is.
func TestRedactQueryHidesUnparsableValues(t *testing.T) {
	for _, raw := range []string{
		"/events?ticket=s3cret%zz",
		"/events?topic=a;ticket=s3cret",
		"/events?ticket=s3cret;x=1&topic=a",
		"/events?ticket=s3cret&ticket=%zz-s3cret2",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := sse.RedactQuery(u, "ticket"); strings.Contains(got, "s3cret") {
			t.Errorf("RedactQuery(%q) = %q: the ticket's value is still there", raw, got)
		}
	}
}
