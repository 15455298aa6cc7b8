package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/docker/docker/client"
)

// errNoRaw says that a raw read could not be made, or was refused in a way the client's own call
// may not be: the caller asks again through that call (which, succeeding where raw reads fail a
// few polls in a row, stops them).
var errNoRaw = errors.New("raw read unavailable")

// rawGet reads a list endpoint's JSON answer through the official client's own HTTP client (its
// transport, dialer and TLS, so that metrics and socket proxies see the same requests): the
// answer's bytes are what tells an idle poll from a changed one without decoding it. It compares
// the answer with last as it comes: same, the answer is last byte for byte and nothing is kept;
// else it returns the new answer. The request is built as the client builds its own (the same
// URL). scratch is a read buffer.
func rawGet(ctx context.Context, cli *client.Client, apiPath string, query url.Values, last, scratch []byte) (_ []byte, same bool, _ error) {
	host, err := client.ParseHostURL(cli.DaemonHost())
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errNoRaw, err)
	}
	p := path.Join(host.Path, apiPath)
	if v := cli.ClientVersion(); v != "" { // negotiated by now: CheckManager's Info came first
		p = path.Join(host.Path, "/v"+strings.TrimPrefix(v, "v"), apiPath)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Path: p, RawQuery: query.Encode()}).String(), nil)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errNoRaw, err)
	}
	// As the client sets them: a socket's path is the URL's host. It speaks TLS to a tcp host
	// when DOCKER_CERT_PATH gives it certificates (FromEnv); a client given TLS otherwise gets a
	// plain-HTTP refusal here, and reads through its own calls.
	req.URL.Scheme, req.URL.Host = "http", host.Host
	if host.Scheme == "tcp" && os.Getenv("DOCKER_CERT_PATH") != "" {
		req.URL.Scheme = "https"
	}
	if host.Scheme == "unix" || host.Scheme == "npipe" {
		req.Host = client.DummyHost
	}
	resp, err := cli.HTTPClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, fmt.Errorf("%w: %w", errNoRaw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false, daemonError(resp)
	}
	body, same, err := readAnswer(resp.Body, resp.ContentLength, last, scratch)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, fmt.Errorf("%w: %w", errNoRaw, err)
	}
	return body, same, nil
}

// readAnswer reads r, comparing it with last as it comes, so that an answer like the last one
// costs no second copy of it: same is true when r is last byte for byte. Otherwise it returns
// what r holds, its first bytes copied from last.
func readAnswer(r io.Reader, size int64, last, scratch []byte) (_ []byte, same bool, _ error) {
	off := 0
	for {
		n, err := r.Read(scratch)
		if n > 0 && (off+n > len(last) || !bytes.Equal(scratch[:n], last[off:off+n])) {
			return readRest(r, size, last[:off], scratch[:n], len(last))
		}
		off += n
		switch {
		case err == io.EOF && off == len(last):
			return nil, true, nil
		case err == io.EOF:
			return bytes.Clone(last[:off]), false, nil
		case err != nil:
			return nil, false, err
		}
	}
}

// readRest reads the rest of a new answer after its first bytes, head and chunk. Without a length
// (the engine sends large answers chunked), room for the last answer's size and a little more is
// made at once: a new answer is mostly the last one, and growing by doubling would copy it over
// and over.
func readRest(r io.Reader, size int64, head, chunk []byte, lastLen int) ([]byte, bool, error) {
	var buf bytes.Buffer
	if size > 0 && size < 1<<30 { // a length the engine claims, not one to trust blindly
		buf.Grow(int(size))
	} else {
		buf.Grow(lastLen + lastLen/8 + len(chunk))
	}
	buf.Write(head)
	buf.Write(chunk)
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, false, err
	}
	if b := buf.Bytes(); cap(b) > len(b)+len(b)/4 {
		return bytes.Clone(b), false, nil // kept until the next change: no more than it needs
	}
	return buf.Bytes(), false, nil
}

// daemonError is the engine's refusal as the client words it ("Error response from daemon: ..."),
// so that a refusal costs one request. A 400 (an API version the engine does not speak yet, or a
// TLS port spoken to in plain HTTP) or an answer without the engine's message is errNoRaw: the
// client's own call knows better.
func daemonError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Message string }
	if resp.StatusCode == http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(body, &e) != nil || e.Message == "" {
		return fmt.Errorf("%w: %s", errNoRaw, resp.Status)
	}
	//lint:ignore ST1005 the client's own words, which users search for
	return fmt.Errorf("Error response from daemon: %s", e.Message)
}

// splitArray appends where each element of a JSON array is in data (start and end) to out,
// without decoding them; ok is false when data is not an array it can read (decoding it whole says
// what is wrong). It only finds the elements' ends: each is decoded, so validated, on its own.
func splitArray(data []byte, out [][2]int) (_ [][2]int, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return out, skipSpace(data, i+1) == len(data)
	}
	for {
		end, ok := elementEnd(data, i)
		if !ok {
			return nil, false
		}
		out = append(out, [2]int{i, i + len(bytes.TrimRight(data[i:end], " \t\r\n"))})
		if data[end] == ']' {
			return out, skipSpace(data, end+1) == len(data)
		}
		i = skipSpace(data, end+1)
	}
}

// elementEnd returns the index of the ',' or ']' that ends the array element starting at i.
func elementEnd(data []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			end, ok := stringEnd(data, i+1)
			if !ok {
				return 0, false
			}
			i = end
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, data[i] == ']'
			}
			depth--
		case ',':
			if depth == 0 {
				return i, true
			}
		}
	}
	return 0, false
}

// stringEnd returns the index of the quote that closes the string whose content starts at i: the
// first quote after an even number of backslashes.
func stringEnd(data []byte, i int) (int, bool) {
	for {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return 0, false
		}
		q += i
		n := 0
		for j := q - 1; j >= i && data[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return q, true
		}
		i = q + 1
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}
