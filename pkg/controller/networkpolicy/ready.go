package networkpolicy

import (
	"context"
	"fmt"
	"time"
)

// WaitForInitialSync returns once the controller has computed the objects
// of the informers' initial lists: every cache synced and every queue
// drained, twice in a row with nothing processed in between. Serving the
// stores before that would hand agents a partial state, which they would
// take for the truth and enforce.
func (c *Controller) WaitForInitialSync(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	quiet := false
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the initial computation: %w", context.Cause(ctx))
		case <-tick.C:
		}
		idle, processed := c.idle()
		if idle && quiet && processed == last {
			return nil
		}
		quiet, last = idle, processed
	}
}
