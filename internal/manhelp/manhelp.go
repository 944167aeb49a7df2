// Package manhelp gives every command of a cobra tree man-page-shaped help
// (a DESCRIPTION in Long, an EXAMPLES block) from one table per binary, and
// writes the tree as man pages for the .deb packages. The text lives in a
// table rather than in each command's constructor so a reader can see the
// whole manual of a binary in one file, and a test can insist that no
// command ships without it.
package manhelp

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Page is one command's manual text.
type Page struct {
	Long    string // DESCRIPTION: what the command does, what it touches, exit status
	Example string // EXAMPLES: commands a person can paste
}

// Apply sets Long and Example on every command of root whose path (as
// cobra's CommandPath, e.g. "anchorage-ca anchors status") has a page.
// A page's text replaces what the constructor set, except that a
// constructor's Long is kept when the page has none.
func Apply(root *cobra.Command, pages map[string]Page) {
	Walk(root, func(c *cobra.Command) {
		p, ok := pages[c.CommandPath()]
		if !ok {
			return
		}
		if p.Long != "" {
			c.Long = strings.TrimSpace(p.Long)
		}
		if p.Example != "" {
			c.Example = indent(strings.TrimSpace(p.Example))
		}
	})
}

// Walk calls fn for root and every visible command below it.
func Walk(root *cobra.Command, fn func(*cobra.Command)) {
	fn(root)
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		Walk(c, fn)
	}
}

// Missing lists the visible commands of root without a description or an
// example, for the test that keeps the manual complete.
func Missing(root *cobra.Command) []string {
	var out []string
	Walk(root, func(c *cobra.Command) {
		if strings.TrimSpace(c.Long) == "" || strings.TrimSpace(c.Example) == "" {
			out = append(out, c.CommandPath())
		}
	})
	return out
}

// Stale lists the pages of the table that name no visible command of root
// (text left behind by a renamed or removed command).
func Stale(root *cobra.Command, pages map[string]Page) []string {
	seen := map[string]bool{}
	Walk(root, func(c *cobra.Command) { seen[c.CommandPath()] = true })
	var out []string
	for p := range pages {
		if !seen[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// WriteMan writes section-1 man pages for root and its commands into dir
// (created 0755), one file per command, as Debian packages install them.
func WriteMan(root *cobra.Command, dir, source string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Section: "1", Source: source, Manual: "anchorage manual"}
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("man pages in %s: %w", filepath.Clean(dir), err)
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}
