package sse

// UsePortablePoller makes new detached-stream engines use the portable
// poller, and returns the function that undoes it.
func UsePortablePoller() (restore func()) {
	saved := newPoller
	newPoller = func() (poller, error) { return waitPoller{}, nil }
	return func() { newPoller = saved }
}

// SameOrigin exposes sameOrigin to tests.
var SameOrigin = sameOrigin
