package render

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/sprig/v3"
)

// Bounds on one render. A template is code (a user's, with --template): a mistake in it, a loop
// that never ends or a range that writes gigabytes, must cost an error, never the gateway's memory
// or its watch loop. A render error is never applied: the live config stays, and /healthz reports
// the error (internal/watch).
const (
	// MaxOutput bounds a rendered config. 10,000 sites render to 11 MB (nginx, HTTP only) and
	// 23 to 29 MB (nginx, HTTP and HTTPS), 2.7 and 13 MB with HAProxy (BenchmarkRender10k): the
	// bound is nine times the largest, and a runaway render holds no more than it.
	MaxOutput = 256 << 20
	// Timeout bounds a render's time: 10,000 sites render in under a second (BenchmarkRender10k),
	// so the bound is 30 times that.
	Timeout = 30 * time.Second
	// MaxList bounds the lists until and untilStep make, the numbers seq writes, and the lists and
	// maps the list and split functions (append, concat, splitList, ...) return: a template
	// iterates over its sites, routes and servers, tens of thousands at most.
	MaxList = 1_000_000
	// MaxString bounds one string a function makes: by a count (repeat, indent, nindent, the rand
	// functions) or by joining (cat, join, replace, print, printf, toJson, ...), so that a doubling
	// loop ($s = cat $s $s) stops there rather than at the gateway's memory. The largest string a
	// real template makes is a JSON dump of the data: about 1 KB per workload.
	MaxString = 32 << 20
)

// errStopped is what a cancelled render's writes and ticks return; Render reports the reason.
var errStopped = errors.New("render stopped")

// errTooLong is what a write past MaxOutput returns.
var errTooLong = errors.New("output too long")

// limitWriter collects a render's output up to max bytes; once stopped, every write fails, so
// that an abandoned render ends at its next write.
type limitWriter struct {
	buf     []byte
	max     int
	stopped atomic.Bool
	// parent is the render's writer when this one collects a site's part (perSite): stopping
	// the render stops the part too.
	parent *limitWriter
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if err := w.reserve(len(p)); err != nil {
		return 0, err
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// WriteString is Write without a copy to a []byte.
func (w *limitWriter) WriteString(p string) (int, error) {
	if err := w.reserve(len(p)); err != nil {
		return 0, err
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// reserve makes room for n more bytes, growing as append would, but never past max.
func (w *limitWriter) reserve(n int) error {
	if w.stopped.Load() || w.parent != nil && w.parent.stopped.Load() {
		return errStopped
	}
	n += len(w.buf)
	if n > w.max {
		return errTooLong
	}
	if n > cap(w.buf) {
		grown := make([]byte, len(w.buf), min(max(2*cap(w.buf), n), w.max))
		copy(grown, w.buf)
		w.buf = grown
	}
	return nil
}

// tick is an empty text node, put at the start of every template (so every {{template}} call)
// and of every range body: executing it writes zero bytes, which fails once the render is
// stopped, so that a render that writes nothing (a range over a billion, a recursion) still ends.
// A write is a plain method call: no cost worth measuring, unlike a template function.
func tick() parse.Node { return &parse.TextNode{NodeType: parse.NodeText, Text: []byte{}} }

// addTicks puts a tick at the start of every template of t and of every range body in them.
func addTicks(t *template.Template) {
	done := map[*parse.Tree]bool{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil || done[tt.Tree] {
			continue
		}
		done[tt.Tree] = true
		tickList(tt.Tree.Root)
		tt.Tree.Root.Nodes = append([]parse.Node{tick()}, tt.Tree.Root.Nodes...)
	}
}

func tickList(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.IfNode:
			tickList(n.List)
			tickList(n.ElseList)
		case *parse.WithNode:
			tickList(n.List)
			tickList(n.ElseList)
		case *parse.RangeNode:
			tickList(n.List)
			tickList(n.ElseList)
			n.List.Nodes = append([]parse.Node{tick()}, n.List.Nodes...)
		case *parse.ListNode:
			tickList(n)
		}
	}
}

// execute runs the template in a goroutine, into a limitWriter, and waits at most r.timeout.
// text/template cannot be interrupted: a render that runs out of time is stopped (its next write
// or tick fails) and left to end on its own.
func (r *Renderer) execute(d Data) ([]byte, error) {
	w := &limitWriter{buf: make([]byte, 0, min(int(r.lastSize.Load())*9/8+4096, r.maxOutput)), max: r.maxOutput}
	d.run = &renderRun{parts: r.parts.begin(), out: w, r: r}
	done := make(chan error, 1)
	go func() {
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return r.tmpl.Execute(w, d)
		}()
		if d.run.parts != nil { // before the answer: the next render finds the store free
			d.run.parts.end(err == nil, w.buf)
		}
		done <- err
	}()
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		switch {
		case errors.Is(err, errTooLong):
			return nil, fmt.Errorf("template %s: output exceeds %d bytes", r.name, r.maxOutput)
		case err != nil:
			return nil, fmt.Errorf("template %s: %w", r.name, err)
		}
		r.lastSize.Store(int64(len(w.buf)))
		return w.buf, nil
	case <-timer.C:
		w.stopped.Store(true)
		return nil, fmt.Errorf("template %s: did not finish within %s (a loop?)", r.name, r.timeout)
	}
}

// boundedFuncs replaces the functions (sprig's and text/template's) that make a list or a string
// of a size the template chooses by versions that refuse one over MaxList elements or MaxString
// bytes: those given a count check it first; those that join, escape or split check their result,
// so that a loop applying one again and again (a doubling: $s = cat $s $s) stops at the bound.
func boundedFuncs() template.FuncMap { return funcBounds{list: MaxList, str: MaxString}.funcs() }

// funcBounds are the bounds of boundedFuncs: MaxList and MaxString but in tests.
type funcBounds struct{ list, str int }

func (b funcBounds) funcs() template.FuncMap {
	sp := sprig.TxtFuncMap()
	m := template.FuncMap{}

	// A count: checked before anything is made. until, untilStep and seq are made here: sprig's
	// loop for ever when a step overflows (untilStep 53 MinInt MinInt), found by FuzzCounts.
	m["until"] = func(n int) ([]int, error) { return b.until("until", 0, n, cmp.Or(cmp.Compare(n, 0), 1)) }
	m["untilStep"] = func(start, stop, step int) ([]int, error) { return b.until("untilStep", start, stop, step) }
	m["seq"] = func(p ...int) (string, error) {
		n := seqCount(p)
		if err := b.listSize("seq", n); err != nil {
			return "", err
		}
		start, step := 1, 1
		switch len(p) {
		case 1:
			step = cmp.Or(cmp.Compare(p[0], 1), 1)
		case 2:
			start, step = p[0], cmp.Or(cmp.Compare(p[1], p[0]), 1)
		case 3:
			start, step = p[0], p[1]
		}
		out := make([]string, n)
		for i := range out {
			out[i] = strconv.Itoa(start + i*step)
		}
		return strings.Join(out, " "), nil
	}
	m["repeat"] = func(count int, s string) (string, error) {
		if count < 0 {
			return "", fmt.Errorf("repeat: negative count %d", count)
		}
		if s != "" && count > b.str/len(s) {
			return "", fmt.Errorf("repeat: %d times %d bytes, more than %d", count, len(s), b.str)
		}
		return strings.Repeat(s, count), nil
	}
	for _, name := range []string{"indent", "nindent"} {
		f := sp[name].(func(int, string) string)
		m[name] = func(spaces int, s string) (string, error) {
			if spaces < 0 {
				return "", fmt.Errorf("%s: negative count %d", name, spaces)
			}
			if lines := strings.Count(s, "\n") + 1; spaces > 0 && lines > (b.str-len(s))/spaces {
				return "", fmt.Errorf("%s: %d spaces on %d lines, more than %d bytes", name, spaces, lines, b.str)
			}
			return f(spaces, s), nil
		}
	}
	for _, name := range []string{"randAlpha", "randAlphaNum", "randAscii", "randNumeric"} {
		f := sp[name].(func(int) string)
		m[name] = func(n int) (string, error) {
			if n > b.str {
				return "", fmt.Errorf("%s: %d bytes, more than %d", name, n, b.str)
			}
			return f(n), nil
		}
	}
	randBytes := sp["randBytes"].(func(int) (string, error))
	m["randBytes"] = func(n int) (string, error) {
		if n > b.str/2 { // base64: 4 bytes out for every 3 in
			return "", fmt.Errorf("randBytes: %d bytes, more than %d", n, b.str/2)
		}
		return randBytes(n)
	}
	splitList := sp["splitList"].(func(string, string) []string)
	m["splitList"] = func(sep, s string) ([]string, error) {
		if err := b.listSize("splitList", parts(s, sep)); err != nil {
			return nil, err
		}
		return splitList(sep, s), nil
	}
	split := sp["split"].(func(string, string) map[string]string)
	m["split"] = func(sep, s string) (map[string]string, error) {
		if err := b.listSize("split", parts(s, sep)); err != nil {
			return nil, err
		}
		return split(sep, s), nil
	}
	splitn := sp["splitn"].(func(string, int, string) map[string]string)
	m["splitn"] = func(sep string, n int, s string) (map[string]string, error) {
		k := parts(s, sep)
		if n >= 0 {
			k = min(n, k)
		}
		if err := b.listSize("splitn", k); err != nil {
			return nil, err
		}
		return splitn(sep, n, s), nil
	}

	// Joining, escaping, splitting by a pattern: the result is checked.
	m["print"] = func(a ...any) (string, error) { return b.stringSize("print", fmt.Sprint(a...)) }
	m["println"] = func(a ...any) (string, error) { return b.stringSize("println", fmt.Sprintln(a...)) }
	m["printf"] = func(format string, a ...any) (string, error) {
		return b.stringSize("printf", fmt.Sprintf(format, a...))
	}
	m["html"] = b.checkResult("html", template.HTMLEscaper)
	m["js"] = b.checkResult("js", template.JSEscaper)
	m["urlquery"] = b.checkResult("urlquery", template.URLQueryEscaper)
	// A dict that holds itself makes fmt (printing it), toJson and deepCopy recurse until the
	// stack overflows, which no recover catches: the gateway would die at every render.
	set := sp["set"].(func(map[string]any, string, any) map[string]any)
	m["set"] = func(d map[string]any, key string, v any) (map[string]any, error) {
		if holds(v, d) {
			return nil, fmt.Errorf("set %q: a dict cannot hold itself", key)
		}
		return set(d, key, v), nil
	}
	for _, name := range []string{"merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"} {
		f := reflect.ValueOf(sp[name])
		m[name] = func(dst map[string]any, srcs ...map[string]any) (any, error) {
			for _, src := range srcs {
				if holds(src, dst) {
					return nil, fmt.Errorf("%s: a dict cannot hold itself", name)
				}
			}
			args := []reflect.Value{reflect.ValueOf(dst), reflect.ValueOf(srcs)}
			res := f.CallSlice(args)
			if len(res) == 2 && !res[1].IsNil() {
				return nil, res[1].Interface().(error)
			}
			return res[0].Interface(), nil
		}
	}

	for _, name := range []string{
		"cat", "quote", "squote", "join", "replace", "wrap", "wrapWith", "b64enc", "b32enc", "snakecase",
		"kebabcase", "regexReplaceAll", "regexReplaceAllLiteral", "mustRegexReplaceAll", "mustRegexReplaceAllLiteral",
		"regexSplit", "mustRegexSplit", "regexFindAll", "mustRegexFindAll", "toJson", "toPrettyJson", "toRawJson",
		"mustToJson", "mustToPrettyJson", "mustToRawJson", "append", "push", "prepend", "mustAppend", "mustPush",
		"mustPrepend", "concat",
	} {
		m[name] = b.checkResult(name, sp[name])
	}
	return m
}

// until makes what sprig's untilStep makes: start, start+step, ... up to stop (excluded).
func (b funcBounds) until(name string, start, stop, step int) ([]int, error) {
	n := untilCount(start, stop, step)
	if err := b.listSize(name, n); err != nil {
		return nil, err
	}
	v := make([]int, n)
	for i := range v {
		v[i] = start + i*step // exact: int arithmetic wraps, and every element lies in [start, stop)
	}
	return v, nil
}

var errorType = reflect.TypeFor[error]()

// holds reports whether v is d, or holds it in the dicts and lists (sprig's map[string]any and
// []any) within it. Each is visited once, so that a structure sharing parts is walked in linear
// time.
func holds(v any, d map[string]any) bool {
	target := reflect.ValueOf(d).Pointer()
	type key struct{ p, n uintptr } // a map's pointer, or a list's first element and length
	seen := map[key]bool{}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			p := reflect.ValueOf(v).Pointer()
			if p == target {
				return true
			}
			if p == 0 || seen[key{p, 0}] {
				return false
			}
			seen[key{p, 0}] = true
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case []any:
			k := key{reflect.ValueOf(v).Pointer(), uintptr(len(v))}
			if len(v) == 0 || seen[k] {
				return false
			}
			seen[k] = true
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// checkResult wraps fn (a template function) so that a string result over MaxString bytes, or a
// list or map over MaxList entries, is an error instead.
func (b funcBounds) checkResult(name string, fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	in := make([]reflect.Type, t.NumIn())
	for i := range in {
		in[i] = t.In(i)
	}
	out := t.Out(0)
	return reflect.MakeFunc(reflect.FuncOf(in, []reflect.Type{out, errorType}, t.IsVariadic()), func(args []reflect.Value) []reflect.Value {
		var res []reflect.Value
		if t.IsVariadic() {
			res = v.CallSlice(args)
		} else {
			res = v.Call(args)
		}
		var err error
		if len(res) == 2 && !res[1].IsNil() {
			err = res[1].Interface().(error)
		} else {
			err = b.resultSize(name, res[0])
		}
		if err != nil {
			return []reflect.Value{reflect.Zero(out), reflect.ValueOf(&err).Elem()}
		}
		return []reflect.Value{res[0], reflect.Zero(errorType)}
	}).Interface()
}

func (b funcBounds) resultSize(name string, v reflect.Value) error {
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		_, err := b.stringSize(name, v.String())
		return err
	case reflect.Slice, reflect.Map:
		return b.listSize(name, v.Len())
	}
	return nil
}

func (b funcBounds) listSize(name string, n int) error {
	if n > b.list {
		return fmt.Errorf("%s: %d elements, more than %d", name, n, b.list)
	}
	return nil
}

func (b funcBounds) stringSize(name, s string) (string, error) {
	if len(s) > b.str {
		return "", fmt.Errorf("%s: a string of %d bytes, more than %d", name, len(s), b.str)
	}
	return s, nil
}

// parts is how many strings strings.Split(s, sep) makes.
func parts(s, sep string) int {
	if sep == "" {
		return utf8.RuneCountInString(s)
	}
	return strings.Count(s, sep) + 1
}

// untilCount is how many numbers untilStep(start, stop, step) makes, counted without making them
// (exactly, for any ints; a count beyond an int is MaxInt).
func untilCount(start, stop, step int) int {
	if stop == start || step == 0 || (stop > start) != (step > 0) {
		return 0
	}
	return plus1((span(start, stop) - 1) / span(step, 0))
}

// seqCount is how many numbers seq writes for its parameters, as sprig's does: [end] (from 1),
// [start end] or [start step end], counting up or down, end included.
func seqCount(p []int) int {
	switch len(p) {
	case 1:
		return plus1(span(1, p[0]))
	case 2:
		return plus1(span(p[0], p[1]))
	case 3:
		start, step, end := p[0], p[1], p[2]
		if step == 0 || (end >= start) != (step > 0) {
			return 0
		}
		return plus1(span(start, end) / span(step, 0))
	}
	return 0
}

// span is |a-b|, exact for any two ints.
func span(a, b int) uint64 {
	if a > b {
		return uint64(a) - uint64(b)
	}
	return uint64(b) - uint64(a)
}

func plus1(n uint64) int {
	if n >= math.MaxInt {
		return math.MaxInt
	}
	return int(n) + 1
}
