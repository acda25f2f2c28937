package accesslog

import (
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// Encoder wraps an encoder (Caddy's JSON encoder, typically) and rewrites,
// in the access log entries it writes:
//   - request>uri: secret query parameters redacted (Redactor.URI);
//   - request>headers: Authorization, Proxy-Authorization and Cookie
//     redacted whatever the server's log_credentials says, Referer dropped
//     (it repeats another page's URL, secrets included);
//   - resp_headers: Set-Cookie redacted, Location's secret query parameters
//     redacted (the IDE sign-on redirects with a one-time ticket).
//
// Every other field is written by the wrapped encoder untouched. Nothing is
// parsed or copied unless it holds a secret.
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

// maxInlineFields is how many fields an entry may have before EncodeEntry's
// copy of them no longer fits on the stack.
const maxInlineFields = 16

// EncodeEntry writes ent and fields through the wrapped encoder, the held
// request first, with the secret-bearing fields wrapped in their redacting
// marshalers.
func (e *Encoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	var inline [maxInlineFields]zapcore.Field
	out := fields
	copied := false
	if e.request != nil {
		held := zapcore.Field{Key: "request", Type: zapcore.ObjectMarshalerType, Interface: e.request}
		out = append(append(inline[:0], held), fields...)
		copied = true
	}
	for i, f := range out {
		if f.Type != zapcore.ObjectMarshalerType {
			continue
		}
		m, ok := e.wrap(f.Key, f.Interface.(zapcore.ObjectMarshaler))
		if !ok {
			continue
		}
		if !copied { // never change the caller's slice: other cores may share it
			out = append(inline[:0], fields...)
			copied = true
		}
		out[i].Interface = m
	}
	return e.Encoder.EncodeEntry(ent, out)
}

// AddObject holds the request a logger is given with With until an entry
// is written, and redacts the other objects it is given.
func (e *Encoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	if key == "request" && e.request == nil {
		e.request = m
		return nil
	}
	if w, ok := e.wrap(key, m); ok {
		m = w
	}
	return e.Encoder.AddObject(key, m)
}

// Clone copies the encoder, its wrapped encoder and held request included.
func (e *Encoder) Clone() zapcore.Encoder {
	return &Encoder{Encoder: e.Encoder.Clone(), r: e.r, request: e.request}
}

// wrap returns the redacting marshaler of a top-level field, if it has one.
func (e *Encoder) wrap(key string, m zapcore.ObjectMarshaler) (zapcore.ObjectMarshaler, bool) {
	switch key {
	case "request":
		return requestMarshaler{m: m, r: e.r}, true
	case "resp_headers":
		return headerMarshaler{m: m, r: e.r, response: true}, true
	}
	return nil, false
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
	switch key {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
		values = redactedValues
	case "Referer":
		if !he.response {
			return nil
		}
	case "Location":
		if he.response {
			values = uriArray{m: values, r: he.r}
		}
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
