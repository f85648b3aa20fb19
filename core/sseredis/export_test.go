package sseredis

import "time"

// SetPingInterval sets how long a subscription may be silent before it is
// pinged. Tests call it before they start any Listen.
func SetPingInterval(d time.Duration) { pingEvery = d }

// Jump is the hash that picks a topic's shard.
var Jump = jump

// Escape is how a topic appears in its keys.
var Escape = escape
