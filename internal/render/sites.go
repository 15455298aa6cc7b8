package render

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// A change of one workload changes one site or a few: the rest of the config is the same bytes as
// before. The per-site parts of a template are named templates run by the perSite function, one
// site at a time, on a SiteData that holds that site and the operator's settings but no other
// site; the renderer keeps each part's output, and runs a part again only when its site or the
// settings (or the value passed for all sites) changed. Same inputs, same template, same bytes: a
// render that reuses parts is byte for byte the render that runs them all (TestIncrementalRender).

// SiteData is what a per-site template sees (through a pointer): one site, the operator's
// settings, and the value the template passed along for every site.
type SiteData struct {
	Site routing.Site
	// With is perSite's optional last argument (nil without): what the sites' parts share that is
	// computed from all the sites (nginx's sticky-cookie variables, say).
	With any
	Options
}

// siteStore is a renderer's store of per-site outputs.
type siteStore struct {
	mu sync.Mutex
	// gen counts renders; a site checked in this render is not compared again.
	gen   uint64
	sites map[string]*siteParts
	// epochs are, per part name, the settings and With its stored outputs were made with.
	epochs map[string]*partEpoch
	next   uint64
	// ran counts the parts the current (or last) render ran rather than reused.
	ran int
}

type partEpoch struct {
	id   uint64
	opts Options
	with any
}

// siteParts are the outputs of one site's parts, made from site.
type siteParts struct {
	site routing.Site
	gen  uint64
	// outs are a few (a template has a handful of parts): a slice is smaller and faster than a map.
	outs []partOut
}

type partOut struct {
	name  string
	epoch uint64
	text  string
	// gen is the render that last wrote text, at offset off of its output. Once that render
	// finished, text is moved into its output (see end): the parts are most of a config, kept
	// once rather than twice.
	gen uint64
	off int
}

// out is the stored output of the part name, if any.
func (e *siteParts) out(name string) *partOut {
	for i := range e.outs {
		if e.outs[i].name == name {
			return &e.outs[i]
		}
	}
	return nil
}

// renderRun is one render's state, reached by perSite through the Data it is given.
type renderRun struct {
	parts *siteStore // nil: render every part (another render holds the store)
	out   *limitWriter
	r     *Renderer
}

// begin takes the store for one render, or returns nil when an abandoned render (one past its
// timeout, not yet stopped) still holds it: this render then reuses nothing.
func (p *siteStore) begin() *siteStore {
	if !p.mu.TryLock() {
		return nil
	}
	p.gen++
	p.ran = 0
	if p.sites == nil {
		p.sites, p.epochs = map[string]*siteParts{}, map[string]*partEpoch{}
	}
	return p
}

// end releases the store. After a render that finished, out being its output: the sites it did
// not see are dropped, and so are the parts it did not write; those it wrote are kept as the
// bytes of out they were written to, which no one changes (a render's output is immutable), so
// that the store keeps no older output alive.
func (p *siteStore) end(finished bool, out []byte) {
	if finished {
		for host, s := range p.sites {
			if s.gen != p.gen {
				delete(p.sites, host)
				continue
			}
			s.outs = slices.DeleteFunc(s.outs, func(o partOut) bool { return o.gen != p.gen })
			for i := range s.outs {
				if o := &s.outs[i]; o.text != "" {
					o.text = unsafe.String(&out[o.off], len(o.text))
				}
			}
		}
	}
	p.mu.Unlock()
}

// epoch is the epoch of the part name's stored outputs for these settings and with: a new one
// when they changed since the last call.
func (p *siteStore) epoch(name string, opts Options, with any) uint64 {
	e := p.epochs[name]
	if e == nil || !reflect.DeepEqual(e.opts, opts) || !reflect.DeepEqual(e.with, with) {
		p.next++
		e = &partEpoch{id: p.next, opts: opts, with: with}
		p.epochs[name] = e
	}
	return e.id
}

// site is the store of site's outputs, emptied when the site changed since it was stored. Within
// one render a host has one site (every list a template has is made from Data.Sites), so it is
// compared once.
func (p *siteStore) site(s *routing.Site) *siteParts {
	e := p.sites[s.Host]
	switch {
	case e == nil:
		e = &siteParts{}
		p.sites[s.Host] = e
	case e.gen == p.gen:
		return e
	case !sameSite(&e.site, s) && !reflect.DeepEqual(e.site, *s):
		e.outs = e.outs[:0]
	}
	// The new table's copy even when equal: the store holds no older table's routes.
	e.site, e.gen = *s, p.gen
	return e
}

// sameSite reports, without a deep compare, that two sites are equal: the same fields and the
// same routes and TLS, not copies (a routing.Cache keeps the sites a change did not touch, their
// slices and pointers shared with the table before). false says nothing.
func sameSite(a, b *routing.Site) bool {
	if a.Host != b.Host || a.Default != b.Default || a.ServerTokens != b.ServerTokens || a.TLS != b.TLS ||
		len(a.Routes) != len(b.Routes) {
		return false
	}
	return len(a.Routes) == 0 || &a.Routes[0] == &b.Routes[0]
}

// perSite runs the template name for each of sites, in their order, and writes the outputs one
// after the other where it is called (straight to the render's output: text/template writes as it
// goes): the per-site part of a config (see SiteData). It returns "". d is the template's data ($);
// with, at most one value, is passed to every site's part as .With.
func perSite(name string, sites []routing.Site, d Data, with ...any) (string, error) {
	if len(with) > 1 {
		return "", fmt.Errorf("perSite %s: at most one value for .With, got %d", name, len(with))
	}
	run := d.run
	if run == nil {
		return "", errors.New("perSite: the template's data ($) is not the render's")
	}
	var w any
	if len(with) == 1 {
		w = with[0]
	}
	// One SiteData and one buffer for every site's part: a render of 10,000 sites from nothing
	// would otherwise allocate each (and grow each buffer from empty) 10,000 times.
	sd := &SiteData{With: w, Options: d.Options}
	part := &limitWriter{buf: make([]byte, 0, 4096), max: run.out.max, parent: run.out}
	var epoch uint64
	if run.parts != nil {
		epoch = run.parts.epoch(name, d.Options, w)
	}
	for i := range sites {
		if run.out.stopped.Load() {
			return "", errStopped
		}
		s := &sites[i]
		// The site's stored output of this part (a new one has epoch 0: epochs start at 1). A
		// part cannot call perSite (its data is not Data), so o stays valid while it runs.
		var o *partOut
		if run.parts != nil {
			stored := run.parts.site(s)
			if o = stored.out(name); o == nil {
				stored.outs = append(stored.outs, partOut{name: name})
				o = &stored.outs[len(stored.outs)-1]
			}
		}
		var text string
		if o != nil && o.epoch == epoch {
			text = o.text
		} else {
			sd.Site, part.buf = *s, part.buf[:0]
			if err := run.r.tmpl.ExecuteTemplate(part, name, sd); err != nil {
				return "", fmt.Errorf("site %s: %w", s.Host, err)
			}
			text = string(part.buf)
			if o != nil {
				o.epoch, o.text = epoch, text
				run.parts.ran++
			}
		}
		if o != nil {
			o.gen, o.off = run.parts.gen, len(run.out.buf)
		}
		if _, err := run.out.WriteString(text); err != nil {
			return "", err
		}
	}
	return "", nil
}
