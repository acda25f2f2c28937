package accesslog

import (
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// Encoder wraps an encoder (Caddy's JSON encoder, typically) and rewrites,
// in the entries it writes, the fields that can hold a secret:
//   - request>uri: secret query parameters redacted (Redactor.URI);
//   - request>headers and resp_headers: as ruleOf says (credentials
//     redacted whatever the server's log_credentials says, a request's
//     Referer left out, a response's Location redacted like a URI).
//
// Every other field is written by the wrapped encoder untouched. Nothing is
// parsed or copied unless it holds a secret, and Caddy's request and header
// fields are written without an allocation (http.go).
//
// The request a logger is given with With is held, not encoded, until an
// entry is written: Caddy gives it to every log's encoder at once (its
// access logger and the reverse proxy's logger reach all configured logs),
// and only the log that writes the entry needs it, once.
type Encoder struct {
	zapcore.Encoder
	r *Redactor
	// request is the "request" object added with With, to be encoded with
	// the next entry; nil if there is none.
	request zapcore.ObjectMarshaler
}

// NewEncoder wraps inner with redactor r.
func NewEncoder(inner zapcore.Encoder, r *Redactor) *Encoder {
	return &Encoder{Encoder: inner, r: r}
}

// EncodeEntry writes ent and fields through the wrapped encoder, the held
// request first, with the secret-bearing fields redacted.
func (e *Encoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	if e.request == nil && !slices.ContainsFunc(fields, mayHoldSecrets) {
		return e.Encoder.EncodeEntry(ent, fields)
	}
	s := getScratch(e.r)
	defer putScratch(s)
	// A copy: never change the caller's slice, other cores may share it.
	out := s.fields[:0]
	if e.request != nil {
		out = append(out, zapcore.Field{Key: "request", Type: zapcore.ObjectMarshalerType, Interface: e.request})
	}
	out = append(out, fields...)
	for i, f := range out {
		if mayHoldSecrets(f) {
			out[i].Interface = e.wrap(f.Key, f.Interface.(zapcore.ObjectMarshaler), s)
		}
	}
	return e.Encoder.EncodeEntry(ent, out)
}

// mayHoldSecrets reports whether f is an object field that wrap redacts.
func mayHoldSecrets(f zapcore.Field) bool {
	return f.Type == zapcore.ObjectMarshalerType && (f.Key == "request" || f.Key == "resp_headers")
}

// AddObject holds the request a logger is given with With until an entry
// is written, and redacts the other objects it is given.
func (e *Encoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	switch {
	case key == "request" && e.request == nil:
		e.request = m
		return nil
	case key == "request" || key == "resp_headers":
		s := getScratch(e.r)
		defer putScratch(s)
		m = e.wrap(key, m, s)
	}
	return e.Encoder.AddObject(key, m)
}

// Clone copies the encoder, its wrapped encoder and held request included.
func (e *Encoder) Clone() zapcore.Encoder {
	return &Encoder{Encoder: e.Encoder.Clone(), r: e.r, request: e.request}
}

// wrap returns the redacting marshaler of a "request" or "resp_headers"
// field: for Caddy's request and header types, one of ours pointing into s
// (valid while s is not put back; one of each per entry); otherwise m with
// the encoder it writes to rewriting the fields that can hold a secret.
func (e *Encoder) wrap(key string, m zapcore.ObjectMarshaler, s *entryScratch) zapcore.ObjectMarshaler {
	if key == "request" {
		if req, ok := m.(caddyhttp.LoggableHTTPRequest); ok && req.Request != nil && s.request.req == nil {
			s.request.req = req.Request
			return &s.request
		}
		return requestMarshaler{m: m, r: e.r}
	}
	if h, ok := m.(caddyhttp.LoggableHTTPHeader); ok && h.Header != nil && s.respHeaders.h == nil {
		s.respHeaders.h, s.respHeaders.response = h.Header, true
		return &s.respHeaders
	}
	return headerMarshaler{m: m, r: e.r, response: true}
}

// headerRule is how a header is logged.
type headerRule int

const (
	logValues       headerRule = iota // as it is
	logRedacted                       // one value: Redacted
	logRedactedURIs                   // each value a URI, its secret query parameters redacted
	leaveOut                          // not at all
)

// ruleOf returns the rule of a request's or a response's header, whatever
// the case of its name: credentials redacted whatever the server's
// log_credentials says, a request's Referer left out (it repeats another
// page's URL, secrets included), a response's Location with its secret
// query parameters redacted (the IDE sign-on redirects with a one-time
// ticket).
func ruleOf(name string, response bool) headerRule {
	for _, c := range [...]string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"} {
		if strings.EqualFold(name, c) {
			return logRedacted
		}
	}
	switch {
	case !response && strings.EqualFold(name, "Referer"):
		return leaveOut
	case response && strings.EqualFold(name, "Location"):
		return logRedactedURIs
	}
	return logValues
}

// requestMarshaler marshals a request with its URI and headers redacted.
type requestMarshaler struct {
	m zapcore.ObjectMarshaler
	r *Redactor
}

func (rm requestMarshaler) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return rm.m.MarshalLogObject(requestEncoder{ObjectEncoder: enc, r: rm.r})
}

// requestEncoder rewrites a request's "uri" and "headers" as they are added.
type requestEncoder struct {
	zapcore.ObjectEncoder
	r *Redactor
}

func (re requestEncoder) AddString(key, value string) {
	if key == "uri" {
		value = re.r.URI(value)
	}
	re.ObjectEncoder.AddString(key, value)
}

func (re requestEncoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	if key == "headers" {
		m = headerMarshaler{m: m, r: re.r}
	}
	return re.ObjectEncoder.AddObject(key, m)
}

// headerMarshaler marshals request or response headers with their secrets
// redacted.
type headerMarshaler struct {
	m        zapcore.ObjectMarshaler
	r        *Redactor
	response bool
}

func (hm headerMarshaler) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return hm.m.MarshalLogObject(headerEncoder{ObjectEncoder: enc, r: hm.r, response: hm.response})
}

// headerEncoder rewrites headers as they are added; each header is an array
// of its values, under its canonical name.
type headerEncoder struct {
	zapcore.ObjectEncoder
	r        *Redactor
	response bool
}

// redactedValues is the one value a redacted header is logged with.
var redactedValues zapcore.ArrayMarshaler = zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
	ae.AppendString(Redacted)
	return nil
})

func (he headerEncoder) AddArray(key string, values zapcore.ArrayMarshaler) error {
	switch ruleOf(key, he.response) {
	case logRedacted:
		values = redactedValues
	case logRedactedURIs:
		values = uriArray{m: values, r: he.r}
	case leaveOut:
		return nil
	}
	return he.ObjectEncoder.AddArray(key, values)
}

// uriArray marshals an array of URIs with their secret query parameters
// redacted.
type uriArray struct {
	m zapcore.ArrayMarshaler
	r *Redactor
}

func (ua uriArray) MarshalLogArray(ae zapcore.ArrayEncoder) error {
	return ua.m.MarshalLogArray(uriAppender{ArrayEncoder: ae, r: ua.r})
}

type uriAppender struct {
	zapcore.ArrayEncoder
	r *Redactor
}

func (ua uriAppender) AppendString(s string) { ua.ArrayEncoder.AppendString(ua.r.URI(s)) }

// Interface guards
var (
	_ zapcore.Encoder         = (*Encoder)(nil)
	_ zapcore.ObjectMarshaler = requestMarshaler{}
	_ zapcore.ObjectMarshaler = headerMarshaler{}
	_ zapcore.ArrayMarshaler  = uriArray{}
)
