package identity

import (
	"context"
	"testing"
)

type otherKey struct{}

func TestContexts(t *testing.T) {
	alice := User{ID: "1", Username: "alice", Role: RoleUser}
	bob := User{ID: "2", Username: "bob", Role: RoleAdmin}
	base := context.WithValue(context.Background(), otherKey{}, "other")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want User
		ok   bool
	}{
		{"none", base, User{}, false},
		{"NewContext", NewContext(base, alice), alice, true},
		{"NewContext without an id", NewContext(base, User{Username: "x"}), User{Username: "x"}, false},
		{"Context", &Context{Context: base, User: alice}, alice, true},
		{"Context without a user", &Context{Context: base}, User{}, false},
		{"Context without a user over NewContext", &Context{Context: NewContext(base, alice)}, alice, true},
		{"Context over NewContext", &Context{Context: NewContext(base, alice), User: bob}, bob, true},
		{"NewContext over Context", NewContext(&Context{Context: base, User: alice}, bob), bob, true},
		{"WithValue over Context", context.WithValue(&Context{Context: base, User: alice}, otherKey{}, "x"), alice, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := FromContext(tc.ctx)
			if u != tc.want || ok != tc.ok {
				t.Errorf("FromContext = %+v, %v; want %+v, %v", u, ok, tc.want, tc.ok)
			}
		})
	}
	// A Context passes the rest on: values, and cancellation both ways.
	parent, cancel := context.WithCancel(base)
	c := &Context{Context: parent, User: alice}
	if c.Value(otherKey{}) != "other" {
		t.Errorf("other value: %v", c.Value(otherKey{}))
	}
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	cancel()
	<-child.Done()
	if c.Err() == nil {
		t.Error("the parent's cancellation did not reach the Context")
	}
	// What FromContext returns is a copy: changing it changes nothing.
	u, _ := FromContext(c)
	u.Role = RoleAdmin
	if got, _ := FromContext(c); got.Role != RoleUser {
		t.Errorf("the carried user changed: %+v", got)
	}
}
