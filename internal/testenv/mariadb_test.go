package testenv

import (
	"context"
	"testing"
)

func TestStartMariaDBStopStart(t *testing.T) {
	m := StartMariaDB(t)
	db := OpenDB(t, m.Setting)
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if err := db.PingContext(context.Background()); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	m.Start()
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}
