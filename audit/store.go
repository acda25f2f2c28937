package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
)

// Insert writes events to the audit_events table of db in one statement,
// each sanitized first (see Event.Sanitized). The Writer uses it from its
// loop; a command-line tool with no loop may call it directly.
func Insert(ctx context.Context, db *database.DB, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("INSERT INTO audit_events (at, kind, actor, actor_id, subject, client_ip, outcome, details) VALUES ")
	args := make([]any, 0, 8*len(events))
	for i, e := range events {
		e = e.Sanitized()
		details := "{}"
		if len(e.Details) > 0 {
			b, err := json.Marshal(e.Details)
			if err != nil {
				return fmt.Errorf("audit: encoding details: %w", err)
			}
			details = string(b)
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.Time.UnixMilli(), string(e.Kind), e.Actor, e.ActorID, e.Subject, e.ClientIP, e.Outcome, details)
	}
	if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("audit: writing %d events: %w", len(events), err)
	}
	return nil
}

// Filter selects events for Query. Zero fields select everything.
type Filter struct {
	// User matches events whose actor or subject is this username (or
	// whose actor_id is this user id).
	User string
	// UserID, with User, also matches the events that name the user by id
	// only (runs).
	UserID string
	// Kind matches one kind.
	Kind Kind
	// Since and Until bound the time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Before pages backwards: only events with an id below it. 0: from the newest.
	Before int64
	// Limit is the page size. Default 50, at most 500.
	Limit int
}

// Page is one page of Query: newest first.
type Page struct {
	// Events are the events of the page, newest first.
	Events []Event
	// Next is the Before of the following (older) page; 0 when this is the last.
	Next int64
}

// Query reads the events f selects from db, newest first, one page at a time.
func Query(ctx context.Context, db *database.DB, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var where []string
	var args []any
	if f.User != "" {
		id := f.UserID
		if id == "" {
			id = f.User
		}
		where = append(where, "(actor = ? OR subject = ? OR actor_id = ?)")
		args = append(args, f.User, f.User, id)
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(f.Kind))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		where = append(where, "at < ?")
		args = append(args, f.Until.UnixMilli())
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	q := "SELECT id, at, kind, actor, actor_id, subject, client_ip, outcome, details FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		var e Event
		var at int64
		var kind, details string
		if err := rows.Scan(&e.ID, &at, &kind, &e.Actor, &e.ActorID, &e.Subject, &e.ClientIP, &e.Outcome, &details); err != nil {
			return Page{}, fmt.Errorf("audit: query: %w", err)
		}
		e.Time, e.Kind = time.UnixMilli(at).UTC(), Kind(kind)
		if details != "" && details != "{}" {
			if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
				return Page{}, fmt.Errorf("audit: event %d: reading details: %w", e.ID, err)
			}
		}
		p.Events = append(p.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	if len(p.Events) > limit {
		p.Events = p.Events[:limit]
		p.Next = p.Events[limit-1].ID
	}
	return p, nil
}

// DeleteBefore removes the events older than cutoff (the retention) and
// returns how many went.
func DeleteBefore(ctx context.Context, db *database.DB, cutoff time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, "DELETE FROM audit_events WHERE at < ?", cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("audit: deleting old events: %w", err)
	}
	return res.RowsAffected()
}
