// Package apierror writes the gateway's JSON answers under /api, errors in the
// one envelope of the HTTP contract:
//
//	{"error": {"code": "snake_case_code", "message": "human sentence"}}
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error a handler answers with: a status, a stable code and a
// message a person can act on.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the stable, snake_case machine code.
	Code string
	// Message is the human sentence.
	Message string
	// Err is the underlying cause; it is logged, never sent.
	Err error
}

// New returns an Error with the given status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap returns an Error that keeps err as its (unsent) cause.
func Wrap(err error, status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

type envelope struct {
	Error body `json:"error"`
}

type body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write sends err as the envelope. An error that is not an *Error becomes a
// 500 internal_error whose detail is not sent.
func Write(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = New(http.StatusInternalServerError, "internal_error", "The gateway failed to handle the request; the error has been logged.")
	}
	WriteJSON(w, e.Status, envelope{Error: body{Code: e.Code, Message: e.Message}})
}

// WriteJSON sends v as a JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// CodeFor is the default code for a status: its text in snake_case
// (502 → "bad_gateway"), for errors that carry no code of their own.
func CodeFor(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return "error"
	}
	return strings.ReplaceAll(strings.ToLower(strings.NewReplacer("-", " ", "'", "").Replace(text)), " ", "_")
}
