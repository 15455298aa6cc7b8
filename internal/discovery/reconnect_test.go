package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
)

// TestReconnectReportsState: each failed connection is reported with its error, each resync as
// connected; an error that is fatal ends it (unreported: the source, and vhost-gen, stop).
func TestReconnectReportsState(t *testing.T) {
	var got []string
	state := func(ok bool, err error) {
		if ok {
			got = append(got, "up")
			return
		}
		got = append(got, "down: "+err.Error())
	}
	calls := 0
	fatal := errors.New("not a manager")
	session := func(ctx context.Context, up func()) (bool, error) {
		calls++
		switch calls {
		case 1:
			return false, errors.New("refused")
		case 2:
			up()
			return true, errors.New("stream ended")
		}
		return false, fatal
	}
	err := Reconnect(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "engine", session,
		func(err error) bool { return errors.Is(err, fatal) }, state)
	if !errors.Is(err, fatal) {
		t.Fatalf("Reconnect = %v, want the fatal error", err)
	}
	want := []string{"down: refused", "up", "down: stream ended"} // a fatal error ends it: vhost-gen stops
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states %q, want %q", got, want)
	}
}
