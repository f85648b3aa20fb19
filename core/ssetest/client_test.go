package ssetest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestConnect(t *testing.T) {
	var gotHeader http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader = r.Header.Clone()
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, ": hi\nretry: 2500\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "id: 8\nevent: tick\ndata: one\ndata: two\n\n")
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Connect(ctx, nil, srv.URL, "7")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, v := range map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache", "Last-Event-ID": "7"} {
		if got := gotHeader.Get(k); got != v {
			t.Errorf("request header %s = %q, want %q", k, got, v)
		}
	}

	var comments []string
	s.Parser().OnComment = func(text string) { comments = append(comments, text) }
	ev, err := s.Next()
	if want := (Event{"tick", "one\ntwo", "8"}); err != nil || ev != want {
		t.Fatalf("Next() = %q, %v; want %q", ev, err, want)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next() error = %v, want io.EOF", err)
	}
	if len(comments) != 1 || comments[0] != " hi" {
		t.Errorf("comments = %q", comments)
	}
	if d, ok := s.Parser().Retry(); d != 2500*time.Millisecond || !ok {
		t.Errorf("Retry() = %v, %v", d, ok)
	}
	if got := s.Parser().LastEventID(); got != "8" {
		t.Errorf("LastEventID() = %q", got)
	}
}

func TestConnectNoLastEventID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Last-Event-Id"]; ok {
			t.Errorf("Last-Event-ID sent: %q", r.Header.Get("Last-Event-ID"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
	}))
	defer srv.Close()

	s, err := Connect(context.Background(), srv.Client(), srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next() error = %v, want io.EOF", err)
	}
}

func TestConnectStatusError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no such stream"+strings.Repeat(".", 2000))
	}))
	defer srv.Close()

	_, err := Connect(context.Background(), nil, srv.URL, "")
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Connect error = %v, want *StatusError", err)
	}
	if se.Code != http.StatusNotFound || len(se.Body) != 1024 || !strings.HasPrefix(se.Body, "no such stream") {
		t.Errorf("StatusError = {%d, %.20q (len %d)}", se.Code, se.Body, len(se.Body))
	}
	if !strings.Contains(se.Error(), "404") {
		t.Errorf("Error() = %q, want it to mention 404", se.Error())
	}
}

func TestConnectContentType(t *testing.T) {
	for _, tc := range []struct {
		ct string
		ok bool
	}{
		{"text/event-stream", true},
		{"Text/Event-Stream", true},
		{"text/event-stream;charset=utf-8", true},
		{"text/event-stream; charset", true}, // a bad parameter does not hide the type
		{"text/plain", false},
		{"application/json", false},
		{"text/event-streams", false},
		{"", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{tc.ct}
			io.WriteString(w, "data: a\n\n")
		}))
		s, err := Connect(context.Background(), nil, srv.URL, "")
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: Connect error = %v", tc.ct, err)
		case !tc.ok && err == nil:
			t.Errorf("%q: Connect succeeded, want error", tc.ct)
		case !tc.ok && errors.As(err, new(*StatusError)):
			t.Errorf("%q: Connect error is a *StatusError: %v", tc.ct, err)
		}
		if s != nil {
			s.Close()
		}
		srv.Close()
	}
}

func TestConnectCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: a\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	s, err := Connect(ctx, nil, srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Next(); err == nil || err == io.EOF {
		t.Errorf("Next() after cancel: error = %v, want a read error", err)
	}
}
