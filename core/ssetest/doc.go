// Package ssetest helps test Server-Sent Events servers: a parser that reads
// an event stream exactly as a browser's EventSource does, and a small client.
//
// The parser follows the HTML standard's "Interpreting an event stream"
// (§9.2.6) to the letter, so a test that passes against it describes what a
// real browser will see, not what a lenient parser happens to accept.
package ssetest
