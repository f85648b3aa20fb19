// Package sseclient reads Server-Sent Events streams from Go, with the
// semantics of a browser's EventSource.
//
// Parser reads an event stream exactly as the HTML standard's
// "Interpreting an event stream" says, and is the parser that package
// ssetest uses too.
package sseclient
