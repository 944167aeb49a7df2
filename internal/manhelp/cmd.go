package manhelp

import "github.com/spf13/cobra"

// Command is the hidden `man DIR` command the .deb build uses to write the
// binary's man pages (cobra/doc), so the pages always match the flags.
func Command(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write this binary's man pages into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return WriteMan(root, args[0], root.Name()+" "+root.Version)
		},
	}
}
