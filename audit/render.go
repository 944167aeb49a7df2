package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON (schema SchemaVersion).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// tableParts is how many score parts the table shows per certificate.
const tableParts = 3

// WriteTable writes the report for a terminal: accounts, certificates
// ranked by blast radius with what they can assume and the statements
// that score most, then the findings.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tID\tREGION\tANCHORS\tPROFILES\tROLES\tSUBJECTS\tERROR")
	for _, a := range r.Accounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", a.Name, dash(a.ID), a.Region, a.Anchors, a.Profiles, a.Roles, a.Subjects, dash(a.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	names := r.names()
	byserial := map[string]*CertEntry{}
	for i := range r.Certificates {
		byserial[r.Certificates[i].Serial] = &r.Certificates[i]
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCORE\tCERTIFICATE\tSUBJECT\tCAN ASSUME")
	for _, rk := range r.Ranking {
		e := byserial[rk.Serial]
		var roles []string
		seen := map[string]bool{}
		for _, x := range e.Access {
			s := x.Account + ":" + names.of(x.Role) + " via " + names.of(x.Profile)
			if !seen[s] {
				seen[s] = true
				roles = append(roles, s)
			}
		}
		if len(roles) == 0 {
			roles = []string{"-"}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Score, e.Serial, e.Subject, strings.Join(roles, ", "))
		for i, p := range e.ScoreParts {
			if i == tableParts {
				fmt.Fprintf(tw, "\t\t\t  … %d more statements (--json has all)\n", len(e.ScoreParts)-tableParts)
				break
			}
			fmt.Fprintf(tw, "\t\t\t  +%d %s on %s resources: %s %s of %s (%s, via %s): %s on %s\n", p.Points, p.Level, p.Breadth,
				p.Policy, p.Statement, names.of(p.Role), p.Account, names.of(p.Profile), p.Action, p.Resource)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No findings.")
	} else {
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tFINDING\tSUBJECT\tEXPLANATION")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Subject, f.Explanation)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%d certificates, %d findings (%d high, %d medium, %d low).\n", len(r.Certificates), len(r.Findings),
		r.Summary[string(High)], r.Summary[string(Medium)], r.Summary[string(Low)])
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s.\n", n)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nameMap maps an ARN to a short name, the ARN itself when unknown.
type nameMap map[string]string

func (m nameMap) of(arn string) string {
	if n, ok := m[arn]; ok && n != "" {
		return n
	}
	return arn
}

// names maps anchor, profile and role ARNs to their names.
func (r *Report) names() nameMap {
	m := nameMap{}
	for _, a := range r.Anchors {
		m[a.ARN] = a.Name
	}
	for _, p := range r.Profiles {
		m[p.ARN] = p.Name
	}
	for _, ro := range r.Roles {
		m[ro.ARN] = ro.Name
	}
	return m
}
