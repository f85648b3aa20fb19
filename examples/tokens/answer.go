package main

import (
	"fmt"

	"github.com/ssekit/ssekit/core/sse"
)

// request is the JSON body of POST /tokens.
type request struct {
	Prompt string `json:"prompt"`
}

// answer returns what streams m's answer to prompt on a per-request
// stream: each token a "token" event, then a "done" event with the count.
// When the client leaves, the stream's context ends, which stops the model,
// and Send fails: the stream then ends with no "done".
func answer(m *Model, prompt string) func(*sse.Stream) error {
	return func(s *sse.Stream) error {
		n := 0
		for tok := range m.Generate(s.Context(), prompt) {
			if err := s.Send(sse.Event{Type: "token", Data: []byte(tok)}); err != nil {
				return err
			}
			n++
		}
		return s.Send(sse.Event{Type: "done", Data: fmt.Appendf(nil, `{"tokens":%d}`, n)})
	}
}
