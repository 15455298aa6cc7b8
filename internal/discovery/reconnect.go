package discovery

import (
	"context"
	"log/slog"
	"time"
)

// Session is one connection of a source: it sends the source's updates until the connection
// fails. It calls up once it has resynced; connected says it got that far.
type Session func(ctx context.Context, up func()) (connected bool, err error)

// Reconnect runs session again and again until ctx ends, with backoff. An outage of what (for
// example "docker engine") is logged once when it starts and once when it ends, and in between
// the source sends nothing, so the last routing table stays in force. An error for which fatal
// returns true ends Reconnect: a mistake to fix, not an outage to wait out. state, if set, hears
// each change: connected (resynced) or not, and why.
func Reconnect(ctx context.Context, log *slog.Logger, what string, session Session, fatal func(error) bool, state func(connected bool, err error)) error {
	if state == nil {
		state = func(bool, error) {}
	}
	const minBackoff, maxBackoff = 250 * time.Millisecond, 10 * time.Second
	backoff, down := minBackoff, false
	for {
		connected, err := session(ctx, func() {
			if down {
				log.Info(what + " reachable again; resynced")
				down = false
			}
			state(true, nil)
			backoff = minBackoff
		})
		if ctx.Err() != nil {
			return nil
		}
		if fatal != nil && fatal(err) {
			return err
		}
		state(false, err)
		switch {
		case !down:
			log.Warn(what+" unreachable; keeping the last routing table until it is back", "err", err)
			down = true
		default:
			log.Debug(what+" still unreachable", "err", err)
		}
		if connected {
			backoff = minBackoff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
