package testenv

import (
	"context"
	"errors"
	"time"

	"github.com/chromedp/chromedp"
)

// networkChanged is the load error Chromium gives when the host's network
// interfaces change during a load: the Docker engine the tests share adds
// and removes bridges and veth pairs whenever a container or network of
// any test starts or ends, and Chromium then aborts what it was loading,
// loopback included.
const networkChanged = "net::ERR_NETWORK_CHANGED"

// navigateAttempts bounds the loads Navigate tries.
const navigateAttempts = 5

// Navigate is chromedp.Navigate that loads the page again when Chromium
// aborted the load because the host's network changed (ERR_NETWORK_CHANGED);
// any other error, and the last one, is returned as it is.
func Navigate(url string) chromedp.Action[chromedp.Void] {
	return retryNetworkChanged(chromedp.Navigate(url))
}

// retryNetworkChanged runs a again, up to navigateAttempts times in all,
// while it fails with ERR_NETWORK_CHANGED.
func retryNetworkChanged(a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for attempt := 1; ; attempt++ {
			v, err := a(ctx, t)
			var le *chromedp.LoadError
			if err == nil || attempt == navigateAttempts || !errors.As(err, &le) || le.ErrorText != networkChanged {
				return v, err
			}
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
	}
}
