package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// DeviceTTLDays is how long, in days, a device token is good for: a browser that signed
// in to an account within it is a known client of that account.
const DeviceTTLDays = 365

// deviceMACLabel separates device token MACs from every other use of the
// signing key (a JWT signs base64url text, which holds no NUL byte).
const deviceMACLabel = "claude-gateway device\x00"

// IssueDevice returns a new device token for the account userID: a random
// device id and the user id, signed with the signing key. A browser keeps it
// in a cookie after it signed in; presented with a later login to the same
// account, it exempts that browser from the account's (username) ban, which
// rotating addresses can otherwise bring on the real user. It grants nothing
// else: it is no credential.
func (t *Tokens) IssueDevice(userID string) string {
	id := RandomID()
	return id + "." + base64.RawURLEncoding.EncodeToString([]byte(userID)) + "." + t.deviceMAC(t.cfg.Key, id, userID)
}

// VerifyDevice checks a device token's signature (current key, then the
// verification-only keys) and returns its device and user ids.
func (t *Tokens) VerifyDevice(token string) (deviceID, userID string, ok bool) {
	if len(token) > 256 {
		return "", "", false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" {
		return "", "", false
	}
	uid, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil || len(uid) == 0 {
		return "", "", false
	}
	keys := append([][]byte{t.cfg.Key}, t.cfg.VerifyKeys...)
	for _, k := range keys {
		if hmac.Equal([]byte(t.deviceMAC(k, parts[0], string(uid))), []byte(parts[2])) {
			return parts[0], string(uid), true
		}
	}
	return "", "", false
}

func (t *Tokens) deviceMAC(key []byte, deviceID, userID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(deviceMACLabel + deviceID + "\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
