// Command client follows an ssekit event stream from Go, the way a backend
// follows another service's stream, and prints each event. It reconnects
// and resumes by itself, and says when the server could not replay what
// it missed.
//
//	go run ./examples/nethttp &
//	go run ./examples/client -url 'http://127.0.0.1:8080/events?topic=news'
//	curl -X POST 'http://127.0.0.1:8080/publish?topic=news&data=hello'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/ssekit/ssekit/core/sseclient"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/events?topic=news", "the stream to follow")
	last := flag.String("last-event-id", "", "resume after this event ID (printed first on each line)")
	token := flag.String("token", "", "a bearer token to send, if the stream needs one")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *last, *token, os.Stdout, log.Default()); err != nil {
		log.Fatal(err)
	}
}

// run prints the events of the stream at url to out, one per line (ID,
// type, data), and what happens to the connection to logger, until ctx is
// done (it then returns nil) or the stream stops for good.
func run(ctx context.Context, url, lastID, token string, out io.Writer, logger *log.Logger) error {
	opts := &sseclient.Options{
		LastEventID: lastID,
		OnConnect: func(ci sseclient.ConnectInfo) {
			logger.Printf("connected (Last-Event-ID %q)", ci.LastEventID)
		},
		OnDisconnect: func(di sseclient.DisconnectInfo) {
			logger.Printf("disconnected after %v and %d events: %v", di.Duration.Round(1e6), di.Events, di.Err)
		},
		OnRetry: func(ri sseclient.RetryInfo) {
			logger.Printf("reconnecting in %v", ri.Delay.Round(1e6))
		},
	}
	if token != "" {
		opts.Header = http.Header{"Authorization": {"Bearer " + token}}
	}
	c := sseclient.New(url, opts)
	for ev, err := range c.Events(ctx) {
		var reset *sseclient.ResetError
		switch {
		case errors.As(err, &reset):
			// A real consumer reloads its state from the service's API here.
			fmt.Fprintf(out, "reset (%s): events were missed, reload\n", reset.Reason)
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		default:
			fmt.Fprintf(out, "%s %s %s\n", ev.LastEventID, ev.Type, ev.Data)
		}
	}
	logger.Print("the server ended the stream for good (204)")
	return nil
}
