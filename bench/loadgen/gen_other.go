//go:build !linux

package loadgen

import "errors"

// Gen is only implemented on Linux (epoll).
type Gen struct{}

// New fails: the generator needs Linux.
func New(Config) (*Gen, error) { return nil, errors.New("loadgen: needs Linux (epoll)") }

func (*Gen) Connect(int, func(int) string)                             {}
func (*Gen) Reconnect()                                                {}
func (*Gen) CloseAll()                                                 {}
func (*Gen) Close()                                                    {}
func (*Gen) Stats() Stats                                              { return Stats{} }
func (*Gen) Mark(uint64, uint64, int)                                  {}
func (*Gen) MarkAll(uint64, uint64, int)                               {}
func (*Gen) Progress() (marked, complete, closed int, delivered int64) { return }
func (*Gen) Phase() Phase                                              { return Phase{} }
