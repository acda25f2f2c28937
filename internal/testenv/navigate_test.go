package testenv

import (
	"context"
	"errors"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRetryNetworkChanged loads again only on ERR_NETWORK_CHANGED, and a
// bounded number of times.
func TestRetryNetworkChanged(t *testing.T) {
	changed := &chromedp.LoadError{ErrorText: networkChanged}
	refused := &chromedp.LoadError{ErrorText: "net::ERR_CONNECTION_REFUSED"}
	for _, tt := range []struct {
		name      string
		errs      []error // what each load answers; nil after the list
		wantCalls int
		wantErr   error
	}{
		{"loads at once", nil, 1, nil},
		{"network changed twice, then loads", []error{changed, changed}, 3, nil},
		{"another load error is not retried", []error{refused}, 1, refused},
		{"network changed, then another error", []error{changed, refused}, 2, refused},
		{"network changed every time", []error{changed, changed, changed, changed, changed, changed}, navigateAttempts, changed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			load := func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
				calls++
				if calls <= len(tt.errs) {
					return chromedp.Void{}, tt.errs[calls-1]
				}
				return chromedp.Void{}, nil
			}
			_, err := retryNetworkChanged(load)(context.Background(), nil)
			if calls != tt.wantCalls || !errors.Is(err, tt.wantErr) {
				t.Errorf("%d loads, error %v; want %d, %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}
