package main

import (
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

func init() { gin.SetMode(gin.TestMode) } // no debug banner in test output

// TestRun starts the example, receives a published event and a tick, and
// checks that cancelling run's context ends the streams cleanly and
// returns promptly.
func TestRun(t *testing.T) { exampletest.Check(t, run) }
