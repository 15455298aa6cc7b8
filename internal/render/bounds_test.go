package render

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/Masterminds/sprig/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// parseBounded parses a test template with small bounds, so that hitting them is quick (also
// under -race): fb, when set, replaces the functions' bounds.
func parseBounded(t *testing.T, text string, maxOutput int, timeout time.Duration, fb *funcBounds) *Renderer {
	t.Helper()
	r, err := Parse("user.tmpl", text)
	if err != nil {
		t.Fatal(err)
	}
	r.maxOutput, r.timeout = maxOutput, timeout
	if fb != nil {
		r.tmpl.Funcs(fb.funcs())
	}
	return r
}

// oneSite is a table with one site, for templates whose loops depend on the data.
func oneSite() Data {
	return NewData(routing.Build([]discovery.Workload{ctr("web", "10.0.0.2", host("a.example"))}, opts), Options{Listen: "80"})
}

// settled waits for the goroutines a stopped render left to end: a stopped render must end at
// its next write or tick, not burn a CPU until the process exits.
func settled(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("a stopped render is still running: %d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRenderBounds: a template that loops for ever, writes without end or makes a huge value
// fails fast, with an error naming the template and the bound, and its render goroutine ends.
// Loops are stopped by the time bound (300ms here), the output by its bound (1 MiB here), what the
// functions make by theirs (2,000 elements and 64 KiB here), long before the time bound (20s).
func TestRenderBounds(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name, text string
		want       string
	}{
		// Time: loops that write nothing; only the ticks stop them.
		{"nested range until, nothing written", `{{range until 1000000}}{{range until 1000000}}{{end}}{{end}}`,
			"template user.tmpl: did not finish within 300ms (a loop?)"},
		{"range over an int", `{{range 1000000000000}}{{end}}`, "did not finish within 300ms (a loop?)"},
		{"range over a variable", `{{$n := 1000000}}{{range $n}}{{range $n}}{{end}}{{end}}`, "did not finish within 300ms"},
		{"recursion fanning out", `{{define "r"}}{{if lt . 60}}{{template "r" (add . 1)}}{{template "r" (add . 1)}}{{end}}{{end}}{{template "r" 0}}`,
			"did not finish within 300ms"},
		{"in a range over the sites", `{{range .Sites}}{{range until 1000000}}{{range until 1000000}}{{end}}{{end}}{{end}}`,
			"did not finish within 300ms"},
		{"slow, writing little", `{{range until 1000000}}{{range until 1000000}}{{if eq . 999999}}x{{end}}{{end}}{{end}}`,
			"did not finish within 300ms"},
		// Output.
		{"a gigabyte", `{{range until 1000000}}{{range until 1000}}x{{end}}{{end}}`,
			"template user.tmpl: output exceeds 1048576 bytes"},
		{"one huge write", `{{repeat 2000000 "x"}}`, "output exceeds 1048576 bytes"},
		// Functions that make what they are told to.
		{"until", `{{until 20000}}`, "error calling until: until: 20000 elements, more than 2000"},
		{"until, negative", `{{until -20000}}`, "until: 20000 elements"},
		{"untilStep", `{{untilStep 0 2000000000 1}}`, "untilStep: 2000000000 elements"},
		{"untilStep, down", `{{untilStep 0 -2000000000 -2}}`, "untilStep: 1000000000 elements"},
		{"untilStep, the whole int range", `{{untilStep -9223372036854775808 9223372036854775807 1}}`, "untilStep: 9223372036854775807 elements"},
		{"seq", `{{seq 50000}}`, "seq: 50000 elements"},
		{"seq, down", `{{seq -50000}}`, "seq: 50002 elements"},
		{"seq, start end", `{{seq 3 90000}}`, "seq: 89998 elements"},
		{"seq, start step end", `{{seq 0 2 90000}}`, "seq: 45001 elements"},
		{"repeat", `{{repeat 100000 "xx"}}`, "repeat: 100000 times 2 bytes, more than 65536"},
		{"repeat, negative", `{{repeat -1 "x"}}`, "repeat: negative count -1"},
		{"indent", `{{indent 100000 "a\nb"}}`, "indent: 100000 spaces on 2 lines"},
		{"nindent", `{{nindent 70000 "a"}}`, "nindent: 70000 spaces on 1 lines"},
		{"randAlpha", `{{randAlpha 100000}}`, "randAlpha: 100000 bytes, more than 65536"},
		{"randBytes", `{{randBytes 40000}}`, "randBytes: 40000 bytes, more than 32768"},
		{"splitList of every byte", `{{splitList "" (repeat 20000 "x")}}`, "splitList: 20000 elements"},
		{"split", `{{split "," (repeat 20000 ",")}}`, "split: 20001 elements"},
		// Doubling: each step is small, the sum is not.
		{"cat doubling", `{{$s := "x"}}{{range until 64}}{{$s = cat $s $s}}{{end}}`, "error calling cat: cat: a string of 131071 bytes, more than 65536"},
		{"printf doubling", `{{$s := "x"}}{{range until 64}}{{$s = printf "%s%s" $s $s}}{{end}}`, "printf: a string of 131072 bytes"},
		{"print doubling", `{{$s := "x"}}{{range until 64}}{{$s = print $s $s}}{{end}}`, "print: a string of 131072 bytes"},
		{"replace doubling", `{{$s := "x"}}{{range until 64}}{{$s = replace "x" "xx" $s}}{{end}}`, "replace: a string of 131072 bytes"},
		{"join doubling", `{{$s := "x"}}{{range until 64}}{{$s = join "" (list $s $s)}}{{end}}`, "join: a string of 131072 bytes"},
		{"js doubling backslashes", `{{$s := "\\"}}{{range until 64}}{{$s = js $s}}{{end}}`, "js: a string of 131072 bytes"},
		{"toJson doubling", `{{$s := "\\"}}{{range until 64}}{{$s = toJson $s}}{{end}}`, "toJson: a string of"},
		{"concat doubling", `{{$l := list 1}}{{range until 64}}{{$l = concat $l $l}}{{end}}`, "concat: 2048 elements, more than 2000"},
		{"append in a loop", `{{$l := list}}{{range until 1000}}{{range until 5}}{{$l = append $l 1}}{{end}}{{end}}`, "append: 2001 elements, more than 2000"},
		// A dict that holds itself would overflow the stack when printed: fatal, no recover.
		{"set a dict into itself", `{{$d := dict}}{{$_ := set $d "self" $d}}{{$d}}`, `error calling set: set "self": a dict cannot hold itself`},
		{"set it deeper", `{{$d := dict}}{{$e := dict "l" (list 1 (dict "d" $d))}}{{$_ := set $d "e" $e}}{{$d}}`, "a dict cannot hold itself"},
		{"merge it into itself", `{{$d := dict}}{{$e := dict "d" $d}}{{$_ := merge $d $e}}{{$d}}`, "merge: a dict cannot hold itself"},
		{"mustMergeOverwrite", `{{$d := dict}}{{$_ := mustMergeOverwrite $d (dict "d" (list $d))}}{{$d}}`, "mustMergeOverwrite: a dict cannot hold itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			limit, fb := 20*time.Second, &funcBounds{list: 2000, str: 64 << 10}
			if strings.Contains(tt.want, "output exceeds") {
				fb = nil
			}
			if strings.Contains(tt.want, "did not finish") {
				limit, fb = timeout, nil
			}
			r := parseBounded(t, tt.text, 1<<20, limit, fb)
			start := time.Now()
			out, err := r.Render(oneSite())
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "template user.tmpl: ") {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if out != nil {
				t.Errorf("output of %d bytes with an error", len(out))
			}
			if took > timeout+5*time.Second {
				t.Errorf("took %v", took)
			}
			settled(t, before)
		})
	}
}

// The bounds themselves: a terabyte-output template stops at MaxOutput; the functions at MaxList
// and MaxString.
func TestRenderBoundsDefaults(t *testing.T) {
	if MaxOutput != 256<<20 || Timeout != 30*time.Second || MaxList != 1_000_000 || MaxString != 32<<20 {
		t.Fatalf("bounds %d, %v, %d, %d", MaxOutput, Timeout, MaxList, MaxString)
	}
	for _, tt := range []struct{ text, want string }{
		{`{{$mb := repeat 1048576 "x"}}{{range until 1000000}}{{$mb}}{{end}}`, "template big.tmpl: output exceeds 268435456 bytes"}, // a terabyte
		{`{{until 2000000}}`, "until: 2000000 elements, more than 1000000"},
		{`{{repeat 100000000 "xx"}}`, "repeat: 100000000 times 2 bytes, more than 33554432"},
		{`{{$s := "x"}}{{range until 64}}{{$s = printf "%s%s" $s $s}}{{end}}`, "printf: a string of 67108864 bytes, more than 33554432"},
	} {
		r, err := Parse("big.tmpl", tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if r.maxOutput != MaxOutput || r.timeout != Timeout {
			t.Fatalf("renderer bounds %d, %v", r.maxOutput, r.timeout)
		}
		start := time.Now()
		if _, err := r.Render(Data{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.text, err, tt.want)
		}
		t.Logf("%s: failed in %v", tt.text, time.Since(start))
	}
}

// A render that ran out of time leaves the renderer as it was: the next render, of data that does
// not loop, succeeds, and the caller keeps its last good config meanwhile (internal/watch applies
// nothing on a render error: TestFailedRenderIsRetried).
func TestRenderAfterTimeout(t *testing.T) {
	r := parseBounded(t, `{{range .Sites}}{{range until 1000000}}{{range until 1000000}}{{end}}{{end}}{{end}}ok`, MaxOutput, 200*time.Millisecond, nil)
	live, err := r.Render(Data{})
	if err != nil || string(live) != "ok" {
		t.Fatalf("first render %q, %v", live, err)
	}
	before := runtime.NumGoroutine()
	if out, err := r.Render(oneSite()); err == nil || out != nil {
		t.Fatalf("looping render = %q, %v; want an error", out, err)
	}
	if string(live) != "ok" {
		t.Errorf("the last good output changed: %q", live)
	}
	if out, err := r.Render(Data{}); err != nil || string(out) != "ok" {
		t.Errorf("render after a timeout = %q, %v", out, err)
	}
	settled(t, before)
}

// What the bounded functions make under their bounds is what sprig's and text/template's make.
func TestBoundedFuncsSame(t *testing.T) {
	exprs := []string{
		`{{until 5}}`, `{{until -3}}`, `{{until 0}}`, `{{untilStep 0 10 3}}`, `{{untilStep 10 0 -3}}`, `{{untilStep 0 10 -1}}`,
		`{{untilStep 3 3 1}}`, `{{seq 5}}`, `{{seq -2}}`, `{{seq 0}}`, `{{seq 2 6}}`, `{{seq 6 2}}`, `{{seq 0 2 9}}`, `{{seq 9 -3 0}}`,
		`{{seq 9 3 0}}`, `{{seq 0 0 5}}`, `{{seq 3 1 3}}`, `{{seq}}`, `{{seq 1 2 3 4}}`,
		`{{repeat 3 "ab"}}`, `{{repeat 0 "ab"}}`, `{{indent 2 "a\nb"}}`, `{{nindent 2 "a"}}`, `{{len (randAlpha 7)}}`, `{{len (randBytes 6)}}`,
		`{{splitList "," "a,b,,c"}}`, `{{split "," "a,b"}}`, `{{splitn "," 2 "a,b,c"}}`, `{{splitn "," -1 "a,b,c"}}`,
		`{{print 1 "a" 2}}`, `{{println "a"}}`, `{{printf "%05d|%s" 42 "x"}}`, `{{html "<a&b>"}}`, `{{js "a'b\\c"}}`, `{{urlquery "a b&c"}}`,
		`{{cat "a" nil "b"}}`, `{{quote "a\"b" 1}}`, `{{squote "a"}}`, `{{join "," (list 1 2)}}`, `{{replace "a" "b" "aaa"}}`,
		`{{wrap 3 "aaa bbb ccc"}}`, `{{wrapWith 2 "|" "aaaa"}}`, `{{b64enc "xyz"}}`, `{{b32enc "xyz"}}`, `{{snakecase "AbcDef"}}`,
		`{{kebabcase "AbcDef"}}`, `{{regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W"}}`, `{{regexReplaceAllLiteral "a" "aXa" "${1}"}}`,
		`{{mustRegexReplaceAll "a" "aa" "b"}}`, `{{regexSplit "z+" "pizza" -1}}`, `{{regexFindAll "a." "abacad" 2}}`,
		`{{toJson (dict "a" (list 1 "<"))}}`, `{{toPrettyJson (list 1)}}`, `{{toRawJson "<"}}`, `{{mustToJson 1}}`,
		`{{append (list 1) 2}}`, `{{push (list) 1}}`, `{{prepend (list 1) 0}}`, `{{mustAppend (list 1) 2}}`, `{{concat (list 1) (list 2 3)}}`,
		`{{$d := dict "a" 1}}{{set $d "b" (dict "c" 2)}}`, `{{merge (dict "a" 1) (dict "b" 2) (dict "a" 3)}}`,
		`{{mergeOverwrite (dict "a" 1) (dict "a" 2)}}`, `{{mustMerge (dict) (dict "x" (list 1))}}`,
		`{{$l := list 1}}{{$d := dict "l" $l "m" (list $l $l)}}{{set $d "n" (list $l $d.m)}}`,
	}
	for _, e := range exprs {
		plain, err := template.New("plain").Funcs(sprig.TxtFuncMap()).Parse(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		var want strings.Builder
		wantErr := plain.Execute(&want, nil)
		r, err := Parse("bounded", e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		got, gotErr := r.Render(Data{})
		if (wantErr != nil) != (gotErr != nil) {
			t.Errorf("%s: error %v, want %v", e, gotErr, wantErr)
		}
		if want.String() != string(got) && !strings.Contains(e, "rand") {
			t.Errorf("%s = %q, want %q", e, got, want.String())
		}
	}
}

// untilCount and seqCount count exactly what sprig makes.
func TestCounts(t *testing.T) {
	sp := sprig.TxtFuncMap()
	untilStep, seq := sp["untilStep"].(func(int, int, int) []int), sp["seq"].(func(...int) string)
	words := func(s string) int { return len(strings.Fields(s)) }
	for a := -7; a <= 7; a++ {
		for b := -7; b <= 7; b++ {
			for step := -4; step <= 4; step++ {
				if got, want := untilCount(a, b, step), len(untilStep(a, b, step)); got != want {
					t.Errorf("untilCount(%d, %d, %d) = %d, want %d", a, b, step, got, want)
				}
				if got, want := seqCount([]int{a, step, b}), words(seq(a, step, b)); got != want {
					t.Errorf("seqCount(%d, %d, %d) = %d, want %d", a, step, b, got, want)
				}
			}
			if got, want := seqCount([]int{a, b}), words(seq(a, b)); got != want {
				t.Errorf("seqCount(%d, %d) = %d, want %d", a, b, got, want)
			}
		}
		if got, want := seqCount([]int{a}), words(seq(a)); got != want {
			t.Errorf("seqCount(%d) = %d, want %d", a, got, want)
		}
	}
}

func TestLimitWriter(t *testing.T) {
	w := &limitWriter{max: 10}
	for _, p := range []string{"abc", "", "defg", "hij"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatalf("write %q: %v", p, err)
		}
	}
	if _, err := w.Write([]byte("k")); !errors.Is(err, errTooLong) {
		t.Errorf("write past max: %v", err)
	}
	if string(w.buf) != "abcdefghij" || cap(w.buf) > 10 {
		t.Errorf("buf %q, cap %d", w.buf, cap(w.buf))
	}
	w.stopped.Store(true)
	if _, err := w.Write(nil); !errors.Is(err, errStopped) {
		t.Errorf("write after stop: %v", err)
	}
}

// A tick sits at the start of every template and of every range body, and adds nothing to the
// output (every shipped template still renders its goldens: the scenario tests).
func TestTicksPlaced(t *testing.T) {
	r, err := Parse("t", `{{define "x"}}{{range .}}{{if .}}{{range .}}a{{end}}{{end}}{{end}}{{end}}{{range .}}{{else}}{{range .}}{{end}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	ticks := 0
	var walk func(l *parse.ListNode)
	walk = func(l *parse.ListNode) {
		if l == nil {
			return
		}
		for i, n := range l.Nodes {
			switch n := n.(type) {
			case *parse.TextNode:
				if len(n.Text) == 0 {
					if i != 0 {
						t.Errorf("a tick at %d of %s", i, l)
					}
					ticks++
				}
			case *parse.IfNode:
				walk(n.List)
				walk(n.ElseList)
			case *parse.RangeNode:
				walk(n.List)
				walk(n.ElseList)
			}
		}
	}
	for _, tt := range r.tmpl.Templates() {
		walk(tt.Tree.Root)
	}
	if ticks != 6 { // 2 templates, 4 range bodies
		t.Errorf("%d ticks, want 6", ticks)
	}
}
