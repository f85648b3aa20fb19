package sse

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Principal is who a stream belongs to, as Auth.Authenticate says.
type Principal struct {
	// ID names the principal. Options.MaxStreamsPerPrincipal counts streams
	// per ID, and the hub's logs show it.
	ID string
	// Data is anything the application keeps with the principal (claims, a
	// user record). The hub never looks at it.
	Data any
}

// authKey is the context key of an *authState.
type authKey struct{}

// authState is what authentication leaves in a request's context.
type authState struct {
	p      Principal
	auth   *Auth  // the Auth that authenticated; nil after WithPrincipal
	source string // where the token came from: "header", "cookie", "query" or ""
}

// WithPrincipal returns a context that carries p, for applications that
// authenticate requests themselves: the stream handler then skips its own
// authentication (HandlerOptions.Auth still authorizes the topics).
// AuthMiddleware stores its principal this way too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, authKey{}, &authState{p: p})
}

// PrincipalFrom returns the principal that authentication stored in ctx.
// HandlerOptions.Topics can use it to pick the principal's topics.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	st, ok := ctx.Value(authKey{}).(*authState)
	if !ok {
		return Principal{}, false
	}
	return st.p, true
}

// AuthMiddleware returns net/http middleware that authenticates requests
// with a before the next handler sees them: wrap a stream route (or a
// group of routes, as with chi's r.Use) in it.
//
// A request without a valid token is answered at once (401, or the
// refusal that Authenticate returned), through the hub, so that the hub's
// Observer and logger see it. On success
// the request goes on with the principal in its context (PrincipalFrom),
// together with a: every stream handler of the hub behind the middleware
// then authorizes the stream's topics with a.Authorize, exactly once,
// unless its own HandlerOptions.Auth is set, which authorizes instead.
//
// CORS preflight requests carry no credentials: they pass through
// unauthenticated, for the stream handler (HandlerOptions.CORS) to answer.
// The middleware knows nothing of CORS, so its own refusals carry no CORS
// headers; a cross-origin page sees a network error instead of the status
// (EventSource does not expose it anyway). Use HandlerOptions.Auth alone
// when a cross-origin page must see refusals.
func AuthMiddleware(hub *Hub, a *Auth) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isPreflight(r) {
				next.ServeHTTP(w, r)
				return
			}
			r, err := hub.authenticate(r, a)
			if err != nil {
				hub.writeRefusal(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// authenticate checks r with a and returns r with the outcome in its
// context, or the refusal.
func (h *Hub) authenticate(r *http.Request, a *Auth) (*http.Request, error) {
	p, source, err := a.check(r)
	if err != nil {
		if errors.Is(err, errAuthenticateUnset) {
			h.log.Error(err.Error(), "path", r.URL.Path)
		}
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), authKey{}, &authState{p: p, auth: a, source: source})), nil
}

// Auth authenticates stream requests and authorizes their topics.
//
// A browser's EventSource cannot set headers, so the token may come from
// three places, tried in this order: an "Authorization: Bearer" header
// (other clients, or EventSource polyfills), the cookie named CookieName
// (EventSource sends cookies: same-origin always, cross-origin with
// withCredentials), and, only if QueryParam is set, a query parameter.
// Query tokens end up in URLs, so keep them short-lived: Tickets issues
// signed tickets that expire. The hub never logs query strings; see
// RedactQuery for access logs.
//
// Refusals happen before any stream byte: 401 when the token is missing or
// Authenticate fails, 403 when Authorize fails. A browser's EventSource
// does not retry either.
type Auth struct {
	// Authenticate turns a token into a principal. An error means 401,
	// unless it is a *RefusalError (Refuse, TryLater), which is used as is.
	Authenticate func(ctx context.Context, token string) (Principal, error)

	// Authorize, if set, decides whether p may subscribe to topics. An
	// error means 403, unless it is a *RefusalError.
	Authorize func(ctx context.Context, p Principal, topics []string) error

	// CookieName is the cookie that carries the token. Empty: no cookie.
	CookieName string

	// QueryParam is the query parameter that carries the token. Empty (the
	// default): tokens are not accepted in the query.
	QueryParam string

	// Optional lets requests without any token through with the zero
	// Principal (a token that is present must still be valid).
	Optional bool
}

// token returns the request's token and where it came from ("header",
// "cookie" or "query"), or "" when there is none.
func (a *Auth) token(r *http.Request) (token, source string) {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		if tok := strings.TrimSpace(h[7:]); tok != "" {
			return tok, "header"
		}
	}
	if a.CookieName != "" {
		if c, err := r.Cookie(a.CookieName); err == nil && c.Value != "" {
			return c.Value, "cookie"
		}
	}
	if a.QueryParam != "" {
		if v := r.URL.Query().Get(a.QueryParam); v != "" {
			return v, "query"
		}
	}
	return "", ""
}

// check authenticates r. It returns the principal and where its token came
// from, or a *RefusalError that says how to answer.
func (a *Auth) check(r *http.Request) (Principal, string, error) {
	token, source := a.token(r)
	if token == "" {
		if a.Optional {
			return Principal{}, "", nil
		}
		return Principal{}, "", unauthorized("missing token")
	}
	if a.Authenticate == nil {
		// A configuration error: say so in the server's log, not to the client.
		return Principal{}, "", errAuthenticateUnset
	}
	p, err := a.Authenticate(r.Context(), token)
	if err != nil {
		var re *RefusalError
		if errors.As(err, &re) {
			return Principal{}, "", withReason(re, RefusedUnauthenticated)
		}
		return Principal{}, "", unauthorized("invalid or expired token")
	}
	return p, source, nil
}

// authorize runs Authorize, turning its error into a refusal.
func (a *Auth) authorize(ctx context.Context, p Principal, topics []string) error {
	if a.Authorize == nil {
		return nil
	}
	err := a.Authorize(ctx, p, topics)
	if err == nil {
		return nil
	}
	var re *RefusalError
	if errors.As(err, &re) {
		return withReason(re, RefusedForbidden)
	}
	return &RefusalError{Status: http.StatusForbidden, Message: "not allowed to subscribe to these topics", reason: RefusedForbidden}
}

// withReason returns re with reason, unless it has one: a refusal that an
// auth hook returned counts as that hook's.
func withReason(re *RefusalError, reason RefusalReason) *RefusalError {
	if re.reason != 0 {
		return re
	}
	c := *re
	c.reason = reason
	return &c
}

var errAuthenticateUnset = errors.New("sse: Auth.Authenticate is not set")

func unauthorized(msg string) *RefusalError {
	return &RefusalError{Status: http.StatusUnauthorized, Message: msg, reason: RefusedUnauthenticated}
}

// RedactQuery returns u as a string with the values of the named query
// parameters replaced by "REDACTED". Use it in access logs when tokens
// travel in the query (Auth.QueryParam):
//
//	logger.Info("request", "url", sse.RedactQuery(r.URL, "ticket"))
func RedactQuery(u *url.URL, params ...string) string {
	if u.RawQuery == "" || len(params) == 0 {
		return u.String()
	}
	// Work on the raw query, pair by pair, so that pairs url.ParseQuery
	// would reject (bad escapes, ";") are redacted too.
	var b strings.Builder
	rest := u.RawQuery
	for rest != "" {
		var pair string
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			pair, rest = rest[:i+1], rest[i+1:]
		} else {
			pair, rest = rest, ""
		}
		key, _, _ := strings.Cut(strings.TrimRight(pair, "&;"), "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if slices.Contains(params, key) {
			sep := ""
			if last := pair[len(pair)-1]; last == '&' || last == ';' {
				sep = string(last)
			}
			pair = url.QueryEscape(key) + "=REDACTED" + sep
		}
		b.WriteString(pair)
	}
	c := *u
	c.RawQuery = b.String()
	return c.String()
}
