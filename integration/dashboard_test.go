package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDashboard loads /routes in headless Chromium against the real engine and HAProxy: the
// problems first (a bad label), the sites with their servers' live states (one server whose
// port does not answer DOWN), the apply history, the sources, and a search that narrows the
// list. It saves a screenshot of each page in the test's artifact directory (kept with
// go test -artifacts).
func TestDashboard(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run `bash scripts/env.sh` (it installs the Debian packages chromium and chromium-driver), or `apt-get install chromium chromium-driver`: %v", err)
	}
	e := newProxyEnv(t, "haproxy", nil, "--proxy-networks", "bridge")
	shop, blog := e.host("shop"), e.host("blog")
	e.run("web1", "-e", "VIRTUAL_HOST="+shop)
	e.run("web2", "-e", "VIRTUAL_HOST="+shop)
	e.run("down", "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PORT=81") // the echo server listens on 80 only
	e.run("blog", "-e", "VIRTUAL_HOST="+blog)
	e.run("bad", "--label", "VIRTUAL_HOST="+shop, "--label", "VIRTUAL_PORT=eighty")
	e.waitBody(blog, "/", "name=blog")
	e.waitBody(shop, "/", "name=web")

	// Wait until the JSON says what the page must show: the DOWN server, the problem, an apply.
	e.waitFor("/routes?format=json&live=1 to show the server that does not answer DOWN", func() error {
		_, body := httpGet("http://"+e.admin+"/routes?format=json&live=1", "")
		var d struct {
			Problems []struct{ Workload string } `json:"problems"`
			Applies  []struct{ Result string }   `json:"applies"`
			Live     *struct {
				From   string `json:"from"`
				Error  string `json:"error"`
				States map[string]struct {
					Status string `json:"status"`
				} `json:"states"`
			} `json:"live"`
		}
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return fmt.Errorf("%v: %s", err, body)
		}
		if d.Live == nil || d.Live.Error != "" {
			return fmt.Errorf("live %+v", d.Live)
		}
		down := 0
		for _, st := range d.Live.States {
			if strings.HasPrefix(st.Status, "DOWN") {
				down++
			}
		}
		if down != 1 || len(d.Problems) == 0 || len(d.Applies) == 0 {
			return fmt.Errorf("%d DOWN, problems %+v, applies %+v", down, d.Problems, d.Applies)
		}
		return nil
	})

	dir := t.ArtifactDir()
	page := func(name, query string) string {
		t.Helper()
		shot := filepath.Join(dir, name+".png")
		dom := chromium(t, browser, "http://"+e.admin+"/routes"+query, shot)
		if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
			t.Errorf("no screenshot of %s: %v", name, err)
		}
		os.WriteFile(filepath.Join(dir, name+".html"), []byte(dom), 0o644)
		t.Logf("screenshot of /routes%s: %s", query, shot)
		return dom
	}

	dom := page("dashboard", "")
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	// row is the table row (<tr>) that names a workload.
	row := func(dom, workload string) string {
		for _, tr := range regexp.MustCompile(`(?s)<tr\b.*?</tr>`).FindAllString(dom, -1) {
			if strings.Contains(tr, ">"+workload+"</a>") {
				return tr
			}
		}
		return ""
	}
	section := func(dom, id string) string {
		m := regexp.MustCompile(`(?s)<section id="` + id + `">.*?</section>`).FindString(dom)
		if m == "" {
			fail("no section %q in the page", id)
		}
		return m
	}

	// The problems come first, with the workload and the message.
	if p, s := strings.Index(dom, `id="problems"`), strings.Index(dom, `id="sites"`); p < 0 || s < 0 || p > s {
		fail("problems at %d, sites at %d: want the problems first", p, s)
	}
	if r := row(section(dom, "problems"), e.name("bad")); !strings.Contains(r, `VIRTUAL_PORT "eighty" (label): must be a port number`) {
		fail("problem of %s: row %q", e.name("bad"), r)
	}
	// The sites, their servers and their live states.
	sites := section(dom, "sites")
	for _, h := range []string{shop, blog} {
		if !strings.Contains(sites, ">"+h+"</a>") {
			fail("site %s not listed", h)
		}
	}
	if !strings.Contains(sites, "server states: live from HAProxy runtime API") {
		fail("the page does not say where the server states come from")
	}
	for _, w := range []string{"web1", "web2", "blog"} {
		if r := row(sites, e.name(w)); !strings.Contains(r, `class="st up">UP</span>`) {
			fail("server %s: row %q, want UP", w, r)
		}
	}
	if r := row(sites, e.name("down")); !strings.Contains(r, `class="st down">DOWN</span>`) || !strings.Contains(r, "L4CON") || !strings.Contains(r, ":81") {
		fail("server down: row %q, want DOWN with the check L4CON", r)
	}
	if !strings.Contains(dom, ">1 DOWN</a>") || !strings.Contains(sites, "1 not UP") {
		fail("the summary or the site does not count the server DOWN")
	}
	// The apply history: at least one apply that went live by a reload or the runtime API.
	if !regexp.MustCompile(`data-label="how" class="nw">(reload|runtime API)</td>`).MatchString(section(dom, "applies")) {
		fail("no apply by reload or runtime API in the history")
	}
	// The sources: docker connected.
	if !regexp.MustCompile(`<strong>docker</strong></td><td data-label="state"><span class="st ok">connected</span>`).MatchString(section(dom, "sources")) {
		fail("docker is not shown connected")
	}
	if !strings.Contains(dom, `/routes?format=json&amp;live=1`) {
		fail("the footer does not document the JSON")
	}

	// The search narrows the list to the one host, and stays in the form.
	dom = page("dashboard-search", "?q="+url.QueryEscape(blog))
	sites = section(dom, "sites")
	if !strings.Contains(sites, ">"+blog+"</a>") || strings.Contains(sites, ">"+shop+"</a>") || !strings.Contains(sites, "Sites (1 matching of 2)") {
		fail("?q=%s: the sites section is not narrowed to it:\n%s", blog, sites)
	}
	if !strings.Contains(dom, `value="`+blog+`"`) {
		fail("?q=%s: the search box does not keep the search", blog)
	}
	if t.Failed() {
		t.Logf("DOM of /routes?q=%s:\n%s", blog, dom)
	}
}

// chromium loads target in headless Chromium, saves a screenshot and returns the DOM.
func chromium(t *testing.T, browser, target, screenshot string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--window-size=1280,1600", "--screenshot="+screenshot, "--dump-dom", target)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", target, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "</html>") {
		t.Fatalf("chromium %s: no DOM\n%s\n%s", target, stdout.String(), stderr.String())
	}
	return stdout.String()
}
