package main

import (
	"testing"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// TestRun starts the example and uses it as a signed-in user would: a
// stream per room, with the session cookie, gets the room's messages;
// cancelling run's context ends the streams cleanly and returns promptly.
func TestRun(t *testing.T) { exampletest.CheckRoom(t, run) }
