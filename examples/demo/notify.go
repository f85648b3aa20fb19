package main

// The notification feed: POST /notify publishes a "notification" event on
// the user's own topic or on the broadcast topic.

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// notification is the data of a "notification" event.
type notification struct {
	Text string `json:"text"`
	From string `json:"from"` // the user who sent it
	To   string `json:"to"`   // "me" (the user's own topic) or "everyone"
	At   string `json:"at"`   // RFC 3339
}

// Some things an application might notify about.
var personalTexts = []string{
	"Your export is ready to download",
	"Sam commented on your pull request",
	"Build #1042 passed in 42 s",
	"Your invoice for May is available",
	"Ada mentioned you in #design",
	"Backup finished: 3.2 GB",
}

var broadcastTexts = []string{
	"%s says hello to everyone 👋",
	"%s shipped a new release",
	"%s started a deploy to staging",
	"%s: lunch in 10 minutes",
}

// notify sends a notification to the logged-in user (field "to": "me", the
// default) or to every page ("everyone"). It answers {"id": "<event id>"}.
func (d *demo) notify(w http.ResponseWriter, r *http.Request) {
	user, ok := d.sessions.user(r)
	if !ok {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	fields, status, err := readFields(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	n := d.notified.Add(1)
	var topic string
	note := notification{From: user, To: fields["to"], At: time.Now().Format(time.RFC3339)}
	switch note.To {
	case "", "me":
		note.To, topic = "me", userTopic(user)
		note.Text = personalTexts[n%uint64(len(personalTexts))]
	case "everyone":
		topic = topicBroadcast
		note.Text = fmt.Sprintf(broadcastTexts[n%uint64(len(broadcastTexts))], user)
	default:
		http.Error(w, `"to" is "me" or "everyone"`, http.StatusBadRequest)
		return
	}
	id, err := d.publish(r.Context(), topic, "notification", note)
	if err != nil {
		slog.Error("ssekit demo: publish failed", "err", err)
		http.Error(w, "could not publish", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}
