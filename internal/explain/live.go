package explain

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServerState is what the proxy says of one server now (HAProxy's "show stat").
type ServerState struct {
	// Status is HAProxy's: UP, DOWN, MAINT, DRAIN, NOLB, "no check", and while a state changes
	// "UP 1/3", "DOWN 1/2".
	Status string `json:"status"`
	// Check is the last health check's status (L4OK, L4CON, L4TOUT, L7STS, SOCKERR, INI…) and
	// CheckDetail what it found ("Connection refused", "Layer4 connection problem").
	Check       string `json:"check,omitempty"`
	CheckDetail string `json:"checkDetail,omitempty"`
	// Since is how long the status has held, in seconds (-1: unknown).
	Since int `json:"sinceSeconds"`
}

// States are servers' live states by Key(backend, server).
type States map[string]ServerState

// Key is a server's key in States.
func Key(backend, server string) string { return backend + "/" + server }

// Live is the servers' live states, where they came from, or why they could not be read.
type Live struct {
	From   string `json:"from"`
	Error  string `json:"error,omitempty"`
	States States `json:"-"`
}

// ReadTimeout bounds one read of the live states.
const ReadTimeout = 3 * time.Second

// ReadLive reads the live states with read (within ReadTimeout); a failure is recorded in the
// result, never returned: the explanation stands without them.
func ReadLive(ctx context.Context, from string, read func(context.Context) (States, error)) *Live {
	ctx, cancel := context.WithTimeout(ctx, ReadTimeout)
	defer cancel()
	states, err := read(ctx)
	if err != nil {
		return &Live{From: from, Error: err.Error()}
	}
	return &Live{From: from, States: states}
}

// ParseStat reads the servers' states from the CSV HAProxy's runtime API answers to "show stat"
// (its columns found by name in the "# pxname,svname,..." header); frontends and backends
// themselves are skipped.
func ParseStat(out string) (States, error) {
	header, body, _ := strings.Cut(strings.TrimLeft(out, " \n"), "\n")
	if !strings.HasPrefix(header, "# ") {
		return nil, fmt.Errorf("show stat: not HAProxy's CSV: %q", firstLine(out))
	}
	cols := map[string]int{}
	for i, name := range strings.Split(strings.TrimPrefix(header, "# "), ",") {
		cols[name] = i
	}
	for _, need := range []string{"pxname", "svname", "status"} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("show stat: no %s column in %q", need, header)
		}
	}
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = -1, true, true
	field := func(rec []string, name string) string {
		if i, ok := cols[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	states := States{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("show stat: %w", err)
		}
		px, sv := field(rec, "pxname"), field(rec, "svname")
		if px == "" || sv == "" || sv == "FRONTEND" || sv == "BACKEND" {
			continue
		}
		st := ServerState{Status: field(rec, "status"), Check: strings.TrimPrefix(field(rec, "check_status"), "* "), Since: -1}
		if n, err := strconv.Atoi(field(rec, "lastchg")); err == nil {
			st.Since = n
		}
		var detail []string
		for _, name := range []string{"check_desc", "last_chk"} {
			if v := field(rec, name); v != "" && !slices.Contains(detail, v) {
				detail = append(detail, v)
			}
		}
		if code := field(rec, "check_code"); code != "" && code != "0" {
			detail = append(detail, "code "+code)
		}
		st.CheckDetail = strings.Join(detail, ": ")
		states[Key(px, sv)] = st
	}
	return states, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 80 {
		l = l[:80] + "…"
	}
	return l
}
