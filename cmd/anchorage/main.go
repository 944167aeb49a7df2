// Command anchorage is the workload side of anchorage: it enrolls with the CA,
// renews its certificate, and trades it for AWS credentials through IAM Roles
// Anywhere, flag-compatible with AWS's aws_signing_helper.
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
		fmt.Fprintf(os.Stderr, "anchorage: %v\n", err)
		return 1
	}
	return 0
}

// newRoot builds the whole command tree with its manual text.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "anchorage",
		Short:         "anchorage workload client: enroll, renew, AWS credentials",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.AddCommand(
		newEnrollCmd(),
		newRenewCmd(),
		newCredentialProcessCmd(),
		newServeCmd(),
		newUpdateCmd(),
		newAgentCmd(),
	)
	root.AddCommand(newManCmd(root))
	manhelp.Apply(root, manual)
	return root
}
