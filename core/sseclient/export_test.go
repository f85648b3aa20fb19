package sseclient

import "time"

// SetJitter replaces the random part of c's waits, so that tests know them.
func SetJitter(c *Client, f func(time.Duration) time.Duration) { c.jitter = f }
