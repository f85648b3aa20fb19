//go:build !linux

package loadgen

import "errors"

// Gen is only implemented on Linux (epoll).
type Gen struct{}

// New fails: the generator needs Linux.
func New(Config) (*Gen, error) { return nil, errors.New("loadgen: needs Linux (epoll)") }

func (*Gen) Connect(int, func(int) string) int                         { return 0 }
func (*Gen) ConnectPath(int, func(int) string, func(int) string) int   { return 0 }
func (*Gen) SetMaxInflight(int)                                        {}
func (*Gen) CloseConns([]int)                                          {}
func (*Gen) Open([]int) []bool                                         { return nil }
func (*Gen) LastIDs() []string                                         { return nil }
func (*Gen) ReconnectConns([]int, []string)                            {}
func (*Gen) Got() []int                                                { return nil }
func (*Gen) TakeHeadLatency() Hist                                     { return Hist{} }
func (*Gen) Resets() map[string]int64                                  { return nil }
func (*Gen) Expect([]int, func(int) [][]uint64)                        {}
func (*Gen) Expectations([]int) []Expectation                          { return nil }
func (*Gen) ExpectProgress() (expecting, done, closed int)             { return }
func (*Gen) Reconnect()                                                {}
func (*Gen) CloseAll()                                                 {}
func (*Gen) Close()                                                    {}
func (*Gen) Stats() Stats                                              { return Stats{} }
func (*Gen) Mark(uint64, uint64, int)                                  {}
func (*Gen) MarkAll(uint64, uint64, int)                               {}
func (*Gen) Progress() (marked, complete, closed int, delivered int64) { return }
func (*Gen) Phase() Phase                                              { return Phase{} }
