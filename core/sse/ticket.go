package sse

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Tickets issues and verifies short-lived signed tickets: tokens for
// Auth.QueryParam, so that a page can open an EventSource with
// "/events?ticket=..." without putting a long-lived credential in a URL.
//
// A ticket is "v1.<payload>.<mac>": the payload (expiry and principal ID)
// in unpadded base64url, signed with HMAC-SHA256. It is not encrypted: the
// principal ID is readable.
//
// EventSource reconnects to the same URL, ticket included, so a ticket must
// live as long as the page may need to reconnect with it; when it has
// expired the stream is refused with 401 and the page should fetch a new
// ticket and open a new EventSource.
type Tickets struct {
	key []byte
	now func() time.Time
}

var (
	// ErrTicketInvalid means a ticket that is malformed or not signed with
	// this key.
	ErrTicketInvalid = errors.New("sse: invalid ticket")
	// ErrTicketExpired means a ticket past its expiry.
	ErrTicketExpired = errors.New("sse: expired ticket")
)

// NewTickets returns a Tickets that signs with key, which must be at least
// 32 bytes of secret randomness shared by every instance that verifies.
func NewTickets(key []byte) (*Tickets, error) {
	if len(key) < 32 {
		return nil, errors.New("sse: NewTickets: the key must be at least 32 bytes")
	}
	return &Tickets{key: append([]byte(nil), key...), now: time.Now}, nil
}

const ticketPrefix = "v1."

// Issue returns a ticket for principal ID id that expires after ttl.
func (t *Tickets) Issue(id string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("sse: Tickets.Issue: ttl must be positive")
	}
	payload := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(payload, uint64(t.now().Add(ttl).UnixMilli()))
	payload = append(payload, id...)
	body := ticketPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(t.mac(body)), nil
}

// Verify checks a ticket and returns its principal ID.
func (t *Tickets) Verify(ticket string) (string, error) {
	if !strings.HasPrefix(ticket, ticketPrefix) {
		return "", ErrTicketInvalid
	}
	dot := strings.LastIndexByte(ticket, '.')
	if dot < len(ticketPrefix) {
		return "", ErrTicketInvalid
	}
	body, sig := ticket[:dot], ticket[dot+1:]
	// Compare the MAC's canonical text, so that no other spelling of it
	// (base64 decoders skip line breaks and ignore trailing bits) verifies.
	if !hmac.Equal([]byte(sig), []byte(base64.RawURLEncoding.EncodeToString(t.mac(body)))) {
		return "", ErrTicketInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(body[len(ticketPrefix):])
	if err != nil || len(payload) < 8 {
		return "", ErrTicketInvalid
	}
	exp := int64(binary.BigEndian.Uint64(payload)) // Unix milliseconds
	if t.now().UnixMilli() >= exp {
		return "", ErrTicketExpired
	}
	return string(payload[8:]), nil
}

// Authenticate verifies a ticket; it fits Auth.Authenticate.
func (t *Tickets) Authenticate(_ context.Context, ticket string) (Principal, error) {
	id, err := t.Verify(ticket)
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: id}, nil
}

func (t *Tickets) mac(body string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}
