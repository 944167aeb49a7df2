package main

import (
	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/internal/manhelp"
)

func newManCmd(root *cobra.Command) *cobra.Command { return manhelp.Command(root) }
