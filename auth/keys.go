package auth

import (
	"errors"
	"fmt"
)

// KeyFiles says where signing keys come from when the environment
// (SECRET_KEY or SECRET_KEY_FILE) does not name one.
type KeyFiles struct {
	// Secret is a file holding the signing key.
	Secret string
	// Generate is a file that receives a random signing key when no key is
	// configured at all and the file does not exist yet (development only).
	Generate string
	// Verify are files of former signing keys still accepted for
	// verification (key rotation).
	Verify []string
}

// Keys are the signing key and the former keys still accepted for
// verification.
type Keys struct {
	// Signing signs new tokens and verifies them.
	Signing []byte
	// Verify are former keys, accepted for verification only.
	Verify [][]byte
	// Generated reports that Signing was just generated into
	// KeyFiles.Generate: a development setup to warn about.
	Generated bool
}

// LoadKeys finds the signing key: SECRET_KEY or SECRET_KEY_FILE (read with
// getenv), else files.Secret, else (development) a key generated into
// files.Generate. There is no built-in fallback key: with none of them it
// returns ErrNoSecret. The verification keys are SECRET_KEY_PREVIOUS (or
// SECRET_KEY_PREVIOUS_FILE), when set, and files.Verify.
func LoadKeys(getenv func(string) string, files KeyFiles) (Keys, error) {
	var k Keys
	key, err := SecretFromEnv(getenv, "SECRET_KEY")
	switch {
	case err == nil:
	case !errors.Is(err, ErrNoSecret):
		return Keys{}, err
	case files.Secret != "":
		if key, err = ReadSecretFile(files.Secret); err != nil {
			return Keys{}, err
		}
	case files.Generate != "":
		if key, k.Generated, err = LoadOrCreateSecretFile(files.Generate); err != nil {
			return Keys{}, err
		}
	default:
		return Keys{}, err
	}
	k.Signing = key
	prev, err := SecretFromEnv(getenv, "SECRET_KEY_PREVIOUS")
	switch {
	case err == nil:
		k.Verify = append(k.Verify, prev)
	case !errors.Is(err, ErrNoSecret):
		return Keys{}, err
	}
	for _, f := range files.Verify {
		v, err := ReadSecretFile(f)
		if err != nil {
			return Keys{}, err
		}
		k.Verify = append(k.Verify, v)
	}
	return k, nil
}

// AdminPassword is the first admin's password from CLAUDE_ADMIN_PASSWORD or
// the file named by CLAUDE_ADMIN_PASSWORD_FILE (a Docker or Kubernetes
// secret), read with getenv; "" when neither is set, and EnsureAdmin then
// generates one.
func AdminPassword(getenv func(string) string) (string, error) {
	val, _, err := FromEnvOrFile(getenv, "CLAUDE_ADMIN_PASSWORD")
	if err != nil || val == nil {
		return "", err
	}
	if err := ValidPassword(string(val)); err != nil {
		return "", fmt.Errorf("the first admin's password: %w", err)
	}
	return string(val), nil
}
