package main

import (
	"context"
	"iter"
	"strings"
	"sync/atomic"
	"time"
)

// Model stands for a language model: it answers a prompt with tokens, one
// every Delay, and stops as soon as the context of the generation ends,
// which is what a real model's client does when its caller goes away.
type Model struct {
	Delay time.Duration // between two tokens

	running atomic.Int64
}

// Generate returns the tokens of the model's answer to prompt. The
// iteration stops early when ctx ends.
func (m *Model) Generate(ctx context.Context, prompt string) iter.Seq[string] {
	return func(yield func(string) bool) {
		m.running.Add(1)
		defer m.running.Add(-1)
		t := time.NewTimer(m.Delay)
		defer t.Stop()
		for i, tok := range Tokens(prompt) {
			if i > 0 {
				t.Reset(m.Delay)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
			if ctx.Err() != nil || !yield(tok) {
				return
			}
		}
	}
}

// Running returns how many generations are in progress.
func (m *Model) Running() int { return int(m.running.Load()) }

// Tokens returns the tokens of the model's answer to prompt, as Generate
// yields them: the prompt echoed back, then a closing line. A token is a
// word with the space before it, or a line break on its own, as the
// tokens of real models often are; so tokens begin with spaces and some
// are nothing but "\n", which an event stream must carry intact.
func Tokens(prompt string) []string {
	answer := "You said: " + strings.TrimSpace(prompt) + "\nThat is all, one token at a time."
	var toks []string
	start := 0
	for i := 1; i < len(answer); i++ {
		if c := answer[i]; c == ' ' || c == '\n' || answer[i-1] == '\n' {
			toks = append(toks, answer[start:i])
			start = i
		}
	}
	return append(toks, answer[start:])
}
