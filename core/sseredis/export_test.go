package sseredis

import "time"

// SetPingInterval sets how long a subscription may be silent before it is
// pinged. Tests call it before they start any Listen.
func SetPingInterval(d time.Duration) { pingEvery = d }

// StateReadEvery is the least time between two reads of the epoch and
// newest Seq that Position makes.
var StateReadEvery = stateReadEvery

// PositionTimeout bounds how long Position waits for Redis when its
// context has no deadline.
const PositionTimeout = positionTimeout
