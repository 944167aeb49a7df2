package manhelp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/internal/manhelp"
)

func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Version: "1.2.3"}
	sub := &cobra.Command{Use: "sub", Short: "a sub", Run: func(*cobra.Command, []string) {}}
	sub.Flags().String("dir", "", "where")
	root.AddCommand(sub, &cobra.Command{Use: "hidden", Hidden: true, Run: func(*cobra.Command, []string) {}})
	return root
}

func TestApplyAndMissing(t *testing.T) {
	root := tree()
	if got := manhelp.Missing(root); len(got) != 2 {
		t.Fatalf("Missing before Apply = %v, want tool and tool sub", got)
	}
	manhelp.Apply(root, map[string]manhelp.Page{
		"tool":     {Long: "the tool", Example: "tool sub"},
		"tool sub": {Long: "does sub", Example: "tool sub --dir d\ntool sub"},
	})
	if got := manhelp.Missing(root); len(got) != 0 {
		t.Fatalf("Missing after Apply = %v", got)
	}
	sub, _, _ := root.Find([]string{"sub"})
	if sub.Example != "  tool sub --dir d\n  tool sub" {
		t.Fatalf("Example not indented: %q", sub.Example)
	}
}

func TestWriteMan(t *testing.T) {
	root := tree()
	manhelp.Apply(root, map[string]manhelp.Page{"tool sub": {Long: "does sub", Example: "tool sub"}})
	dir := filepath.Join(t.TempDir(), "man1")
	if err := manhelp.WriteMan(root, dir, "tool 1.2.3"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tool-sub.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH \"TOOL-SUB\" \"1\"", "does sub", "\\fB--dir\\fP"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("tool-sub.1 lacks %q:\n%s", want, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tool-hidden.1")); err == nil {
		t.Error("a hidden command got a man page")
	}
}

func TestStale(t *testing.T) {
	root := &cobra.Command{Use: "tool"}
	root.AddCommand(&cobra.Command{Use: "sub", Run: func(*cobra.Command, []string) {}})
	pages := map[string]manhelp.Page{"tool": {}, "tool sub": {}, "tool gone": {}, "tool old": {}}
	if got := manhelp.Stale(root, pages); len(got) != 2 || got[0] != "tool gone" || got[1] != "tool old" {
		t.Errorf("Stale = %v, want [tool gone tool old]", got)
	}
}
