// Command anchorage-ca runs the anchorage certificate authority: it creates
// the CA, serves enrollment, renewal, revocation and CRLs, and talks to the
// admin API for incident response.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/internal/manhelp"
	"github.com/anchorage-pki/anchorage/internal/version"
)

func main() { os.Exit(run(os.Args[1:])) }

// run executes the CLI and returns the process exit code; errors are printed
// as one line on stderr.
func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "anchorage-ca: %v\n", err)
		return 1
	}
	return 0
}

// newRoot builds the whole command tree with its manual text.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "anchorage-ca",
		Short:         "anchorage certificate authority",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.AddCommand(
		newInitCmd(),
		newServeCmd(),
		newTokenCmd(),
		newRevokeCmd(),
		newCRLCmd(),
		newCertsCmd(),
		newAnchorsCmd(),
		newAdminCmd(),
		newLocalAWSCmd(),
		newMigrateCmd(),
		newCompactCmd(),
		newEventsCmd(),
		newAuditCmd(),
		newServiceCACmd(),
	)
	root.AddCommand(newManCmd(root))
	manhelp.Apply(root, manual)
	return root
}
