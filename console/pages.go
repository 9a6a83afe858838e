package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// staticFS serves assets/static under /static/.
var staticFS = func() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}()

var funcs = template.FuncMap{
	"join": func(ids []int32) string {
		var b strings.Builder
		for i, id := range ids {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatInt(int64(id), 10))
		}
		return b.String()
	},
	"sub":   func(a, b int64) int64 { return a - b },
	"sub64": func(a, b int) int { return a - b },
	"add":   func(a, b int) int { return a + b },
	"bytes": func(n int64) string {
		if n < 0 {
			return "–"
		}
		const unit = 1024
		if n < unit {
			return strconv.FormatInt(n, 10) + " B"
		}
		f, i := float64(n), -1
		for f >= unit && i < 4 {
			f /= unit
			i++
		}
		return strconv.FormatFloat(f, 'f', 1, 64) + " " + "KMGTP"[i:i+1] + "iB"
	},
	"rate": func(r float64) string {
		if r < 0 {
			return "–"
		}
		return strconv.FormatFloat(r, 'f', 1, 64)
	},
	"lagClass": func(lag int64) string {
		if lag > 0 {
			return "warn"
		}
		return ""
	},
}

// refreshHeader marks the requests console.js makes to refresh a page's
// live sections.
const refreshHeader = "X-Console-Refresh"

// pageData is what every page template sees.
type pageData struct {
	Title   string
	Nav     string // the section highlighted in the menu
	Data    any
	Browse  *BrowseRequest
	Records *Messages
	Error   string // the loader's error, shown in place of the data
	Writes  bool
	Schemas bool // a schema registry is configured
}

// page registers an HTML page whose data comes from load, rendered by the
// template file name inside the layout.
func (c *Console) page(pattern, name string, load loader) {
	tmpl := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name))
	nav := strings.TrimSuffix(name, ".html")
	if nav == "subject" {
		nav = "schemas"
	}
	if nav == "topic" || nav == "group" || nav == "app" {
		nav += "s"
	}
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c.smp.ensure()
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.RequestTimeout)
		defer cancel()
		d := pageData{Nav: nav, Writes: c.cfg.AllowWrites, Schemas: c.sr != nil, Title: pageTitle(r)}
		status := http.StatusOK
		v, err := load(ctx, r)
		if err == nil && name == "topic.html" && r.Header.Get(refreshHeader) == "" {
			// The topic page shows the message browser's answer to
			// its own query string; a live refresh, which replaces
			// only the partitions, does not read records again.
			var br BrowseRequest
			if br, err = parseBrowse(r); err == nil {
				d.Browse = &br
				bctx, bcancel := context.WithTimeout(r.Context(), browseBudget+c.cfg.RequestTimeout)
				d.Records, err = c.readMessages(bctx, r.PathValue("topic"), br)
				bcancel()
			}
		}
		if err != nil {
			status = statusOf(err)
			d.Error = err.Error()
		}
		d.Data = v
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, d); err != nil {
			c.cfg.Logger.Error("console: render", "page", name, "err", err)
			http.Error(w, "console: cannot render the page", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		// Scripts only from the console itself: a record that slipped
		// through escaping still could not run one.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.WriteHeader(status)
		w.Write(buf.Bytes())
	})
}

func pageTitle(r *http.Request) string {
	switch {
	case r.PathValue("topic") != "":
		return "Topic " + r.PathValue("topic")
	case r.PathValue("group") != "":
		return "Group " + r.PathValue("group")
	case r.PathValue("app") != "":
		return "Stream application " + r.PathValue("app")
	case r.URL.Path == "/apps":
		return "Stream applications"
	case r.PathValue("subject") != "":
		return "Subject " + r.PathValue("subject")
	case r.URL.Path == "/schemas":
		return "Schemas"
	case r.URL.Path == "/topics":
		return "Topics"
	case r.URL.Path == "/groups":
		return "Consumer groups"
	}
	return "Overview"
}
