// Package apierror holds every error the gateway answers with and writes its
// JSON answers under /api, errors in the one envelope of the HTTP contract:
//
//	{"error": {"code": "snake_case_code", "message": "human sentence"}}
//
// The codes are defined once, in codes.go, each with its status and its one
// message; a Code is the only way to make an Error, so every code a client can
// see is listed there.
package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error a handler answers with: a registered Code, the message
// it formats, and the cause, which is logged and never sent.
type Error struct {
	code    *Code
	message string
	// Err is the underlying cause; it is logged, never sent.
	Err error
}

// Status is the HTTP status of the answer.
func (e *Error) Status() int { return e.kind().Status }

// Code is the stable, snake_case machine code.
func (e *Error) Code() string { return e.kind().Name }

// Message is the human sentence sent to the client.
func (e *Error) Message() string {
	if e.code == nil {
		return Internal.Message
	}
	return e.message
}

// kind is e's Code; an Error not made by a Code is an internal error.
func (e *Error) kind() *Code {
	if e.code == nil {
		return Internal
	}
	return e.code
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code(), e.Message(), e.Err)
	}
	return e.Code() + ": " + e.Message()
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the *Error in err's chain, or, when there is none, an
// internal_error that keeps err as its cause.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal.Wrap(err)
}

type envelope struct {
	Error body `json:"error"`
}

type body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write sends err as the envelope. An error that is not an *Error becomes a
// 500 internal_error whose detail is not sent. Headers the error needs
// (WWW-Authenticate, Retry-After, Allow) are set on w before.
func Write(w http.ResponseWriter, err error) {
	e := As(err)
	WriteJSON(w, e.Status(), envelope{Error: body{Code: e.Code(), Message: e.Message()}})
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

// IsAPIPath reports whether errors on path are answered with the JSON
// envelope rather than a page: the gateway's and the backend's APIs, /api
// and /ws (WebSocket endpoints speak to programs, not people).
func IsAPIPath(path string) bool {
	for _, prefix := range []string{"/api", "/ws"} {
		if path == prefix || strings.HasPrefix(path, prefix+"/") {
			return true
		}
	}
	return false
}
