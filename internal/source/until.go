package source

import "context"

// UntilClosed returns a copy of ctx that is also cancelled when closed is
// closed: adapters use it so that Close interrupts a Connect or a loop that
// waits on the broker. Call cancel when done with it; that also ends the
// goroutine that watches closed.
func UntilClosed(ctx context.Context, closed <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
