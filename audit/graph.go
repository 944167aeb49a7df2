package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
)

// node is one box of the picture: the CA, an anchor, a profile, a role or
// a role's permission summary.
type node struct {
	Kind     string // ca, anchor, profile, role, permissions
	ID       string // ARN (anchor, profile, role), role ARN for permissions, CA fingerprint
	DOMID    string
	Label    string
	Sub      string // second line
	Severity string // highest finding on it: high, medium, low, "" none
	Title    string // tooltip: what it is and its findings
	Col, Row int
	X, Y     int
}

type edge struct{ From, To *node }

type graph struct {
	Nodes []*node
	Edges []edge
	W, H  int
}

const (
	colW  = 300
	boxW  = 250
	boxH  = 44
	rowH  = 60
	padX  = 20
	padY  = 50
	ncols = 5
)

func domID(kind, id string) string {
	s := sha256.Sum256([]byte(kind + "\x00" + id))
	return kind + "-" + hex.EncodeToString(s[:6])
}

// buildGraph lays the map out in five columns: CA → anchors → profiles →
// roles → permission summaries. An anchor links to every enabled profile
// of its account (Roles Anywhere does not bind profiles to anchors); a
// profile to the roles it names.
func (r *Report) buildGraph() *graph {
	g := &graph{}
	findings := map[string][]Finding{}
	for _, f := range r.Findings {
		findings[f.Subject] = append(findings[f.Subject], f)
	}
	add := func(kind, id, label, sub, what string, col, row int) *node {
		n := &node{Kind: kind, ID: id, DOMID: domID(kind, id), Label: label, Sub: sub, Col: col, Row: row}
		var lines []string
		lines = append(lines, what)
		for _, f := range findings[id] {
			if kind == "permissions" {
				break
			}
			if f.Severity.Rank() > Severity(n.Severity).Rank() {
				n.Severity = string(f.Severity)
			}
			lines = append(lines, fmt.Sprintf("[%s] %s: %s", f.Severity, f.ID, f.Explanation))
		}
		n.Title = strings.Join(lines, "\n")
		g.Nodes = append(g.Nodes, n)
		return n
	}
	var cas []*node
	for i, c := range r.CA {
		cas = append(cas, add("ca", c.Fingerprint, "CA", c.Subject, "this CA: "+c.Subject+"\nSHA-256 "+c.Fingerprint, 0, i))
	}
	anchors := map[string]*node{}
	for i, a := range r.Anchors {
		sub := a.Account
		if !a.Enabled {
			sub += " (disabled)"
		}
		if !a.Ours {
			sub += " · other CA"
		}
		anchors[a.ARN] = add("anchor", a.ARN, a.Name, sub, "trust anchor "+a.ARN, 1, i)
	}
	profiles := map[string]*node{}
	for i, p := range r.Profiles {
		sub := p.Account
		if !p.Enabled {
			sub += " (disabled)"
		}
		if !p.SessionPolicy && len(p.ManagedPolicies) == 0 {
			sub += " · no session policy"
		}
		profiles[p.ARN] = add("profile", p.ARN, p.Name, sub, "profile "+p.ARN, 2, i)
	}
	roles := map[string]*node{}
	for i, ro := range r.Roles {
		roles[ro.ARN] = add("role", ro.ARN, ro.Name, ro.Account, "role "+ro.ARN, 3, i)
		ps := ro.Permissions
		sub := fmt.Sprintf("%d statements · score %d", ps.Statements, ps.Score)
		label := ps.Level
		if ps.Admin {
			label = "admin-equivalent"
		} else if ps.Wildcard {
			label += " on *"
		}
		if ro.Error != "" {
			label, sub = "unreadable", ro.Error
		}
		pn := add("permissions", ro.ARN, label, sub, fmt.Sprintf("permissions of %s: %d policies, %d Allow statements, highest level %s, admin-equivalent %v", ro.ARN, ps.Policies, ps.Statements, ps.Level, ps.Admin), 4, i)
		switch {
		case ps.Admin || ps.Level == LevelPermissions:
			pn.Severity = string(High)
		case ps.Level == LevelWrite && ps.Wildcard:
			pn.Severity = string(Medium)
		}
		g.Edges = append(g.Edges, edge{roles[ro.ARN], pn})
	}
	for _, a := range r.Anchors {
		an := anchors[a.ARN]
		if a.Ours {
			for _, c := range cas {
				g.Edges = append(g.Edges, edge{c, an})
			}
		}
		if !a.Enabled {
			continue
		}
		for _, p := range r.Profiles {
			if p.Account == a.Account && p.Enabled {
				g.Edges = append(g.Edges, edge{an, profiles[p.ARN]})
			}
		}
	}
	for _, p := range r.Profiles {
		for _, ro := range p.Roles {
			if rn := roles[ro]; rn != nil {
				g.Edges = append(g.Edges, edge{profiles[p.ARN], rn})
			}
		}
	}
	rows := 1
	for _, n := range g.Nodes {
		n.X = padX + n.Col*colW
		n.Y = padY + n.Row*rowH
		rows = max(rows, n.Row+1)
	}
	g.W = padX*2 + (ncols-1)*colW + boxW
	g.H = padY + rows*rowH + padY
	sort.SliceStable(g.Edges, func(i, j int) bool { return g.Edges[i].From.Col < g.Edges[j].From.Col })
	return g
}

var colours = map[string]string{"high": "#d73a49", "medium": "#f08c00", "low": "#e3c000", "": "#2f9e44"}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"colour": func(s string) string { return colours[s] },
	"half":   func(i int) int { return i / 2 },
	"add":    func(a, b int) int { return a + b },
	"trunc": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>anchorage audit {{.R.GeneratedAt.Format "2006-01-02 15:04:05Z07:00"}}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1b1f23;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.summary span{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;margin-right:6px}
.sev-high{background:#d73a49}.sev-medium{background:#f08c00}.sev-low{background:#e3c000;color:#1b1f23}
svg text{font-size:12px;fill:#1b1f23}svg text.label{font-weight:600}
svg .col{font-size:13px;font-weight:700;fill:#57606a}
svg .edge{stroke:#8c959f;stroke-width:1.2;fill:none;opacity:.7}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-size:12px}
</style></head><body>
<h1>anchorage audit</h1>
<div>{{.R.GeneratedAt.Format "2006-01-02 15:04:05Z07:00"}} · {{len .R.Certificates}} live certificates · {{len .R.Accounts}} accounts</div>
<p class="summary"><span class="sev-high">{{index .R.Summary "high"}} high</span><span class="sev-medium">{{index .R.Summary "medium"}} medium</span><span class="sev-low">{{index .R.Summary "low"}} low</span></p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.G.W}}" height="{{.G.H}}" viewBox="0 0 {{.G.W}} {{.G.H}}" role="img" aria-label="CA to trust anchors to profiles to roles">
<rect x="0" y="0" width="{{.G.W}}" height="{{.G.H}}" fill="#ffffff"/>
<text class="col" x="20" y="30">CA</text><text class="col" x="320" y="30">Trust anchors</text><text class="col" x="620" y="30">Profiles</text><text class="col" x="920" y="30">Roles</text><text class="col" x="1220" y="30">Permissions</text>
{{range .G.Edges}}<path class="edge" d="M{{add .From.X 250}},{{add .From.Y 22}} C{{add .From.X 275}},{{add .From.Y 22}} {{add .To.X -25}},{{add .To.Y 22}} {{.To.X}},{{add .To.Y 22}}"/>
{{end}}{{range .G.Nodes}}<g class="node {{.Kind}}{{if .Severity}} sev-{{.Severity}}{{end}}" id="{{.DOMID}}" data-kind="{{.Kind}}" data-id="{{.ID}}"{{if .Severity}} data-severity="{{.Severity}}"{{end}}><title>{{.Title}}</title>
<rect x="{{.X}}" y="{{.Y}}" width="250" height="44" rx="6" fill="#f6f8fa" stroke="{{colour .Severity}}" stroke-width="3"/><rect x="{{.X}}" y="{{.Y}}" width="8" height="44" rx="3" fill="{{colour .Severity}}"/>
<text class="label" x="{{add .X 16}}" y="{{add .Y 18}}">{{trunc .Label 34}}</text><text x="{{add .X 16}}" y="{{add .Y 35}}">{{trunc .Sub 38}}</text></g>
{{end}}</svg>
<h2>Findings</h2>
{{if .R.Findings}}<table><tr><th>Severity</th><th>Finding</th><th>Subject</th><th>Explanation</th></tr>
{{range .R.Findings}}<tr><td><span class="sev-{{.Severity}}" style="padding:1px 6px;border-radius:8px">{{.Severity}}</span></td><td>{{.ID}}</td><td><code>{{.Subject}}</code></td><td>{{.Explanation}}</td></tr>
{{end}}</table>{{else}}<p>No findings.</p>{{end}}
<h2>Blast radius</h2>
<table><tr><th>Score</th><th>Certificate</th><th>Subject</th><th>Roles reached</th></tr>
{{range .R.Ranking}}<tr><td>{{.Score}}</td><td><code>{{.Serial}}</code></td><td>{{.Subject}}</td><td>{{.Roles}}</td></tr>
{{end}}</table>
</body></html>
`))

// WriteHTML writes one self-contained page: inline SVG and CSS, no
// scripts, no network. Every anchor, profile and role is a <g> with
// data-kind and data-id (its ARN); findings colour it and list themselves
// in its <title> tooltip.
func (r *Report) WriteHTML(w io.Writer) error {
	return pageTmpl.Execute(w, struct {
		R *Report
		G *graph
	}{r, r.buildGraph()})
}

// WriteDot writes the same map as a Graphviz digraph.
func (r *Report) WriteDot(w io.Writer) error {
	g := r.buildGraph()
	var b strings.Builder
	b.WriteString("digraph audit {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f6f8fa\", fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes {
		colour := colours[n.Severity]
		fmt.Fprintf(&b, "  %q [label=%q, color=%q, penwidth=3, tooltip=%q, class=%q, id=%q];\n",
			n.DOMID, n.Label+"\n"+n.Sub, colour, n.Title, n.Kind, n.ID)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %q -> %q;\n", e.From.DOMID, e.To.DOMID)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
