package ssenats

// Escape and Unescape turn topics into subject tokens and back.
var (
	Escape   = escape
	Unescape = unescape
)

// SetInboxSize sets the capacity of the inboxes of Listen calls made
// later, and returns the previous one.
func SetInboxSize(n int) int {
	old := inboxSize
	inboxSize = n
	return old
}

// EncodeEvent and DecodeEvent are the payload codec.
var (
	EncodeEvent = encodeEvent
	DecodeEvent = decodeEvent
)
