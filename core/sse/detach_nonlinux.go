//go:build unix && !linux

package sse

func defaultPoller() (poller, error) { return waitPoller{}, nil }
