package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caserver"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/events/stream"
)

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Work with the audit event stream",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE...",
		Short: "Check the hash chain of audit event files, oldest first (events.jsonl.3 events.jsonl.2 events.jsonl.1 events.jsonl)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			s, err := stream.Verify(files...)
			if err != nil {
				var br *stream.Break
				if errors.As(err, &br) {
					return fmt.Errorf("events verify: %w (%d lines before it hold)", err, s.Lines)
				}
				return fmt.Errorf("events verify: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %d events, chain intact\n", strings.Join(files, " "), s.Lines)
			if s.Continues {
				fmt.Fprintf(out, "the first line continues an earlier file not given (prev %s); give it too to check the link\n", s.First)
			}
			fmt.Fprintf(out, "next line's prev: %s\n", s.Last)
			return nil
		},
	})
	return cmd
}

// localActor names who ran a command on this host: cli:USER@HOST.
func localActor() string {
	actor := "cli"
	if u, err := user.Current(); err == nil {
		actor += ":" + u.Username
	}
	if h, err := os.Hostname(); err == nil {
		actor += "@" + h
	}
	return actor
}

// emitLocal records what a command did with the CA's own files (a token
// mint, a break-glass admin certificate) in the CA's audit stream, when it
// is a file: the lock it takes lets the running server and this command
// extend one chain. A stdout stream belongs to the server's process (and
// this command's stdout may carry a token), so nothing is written there.
func emitLocal(cfg *config.CA, e events.Event) error {
	if cfg.Events == nil || cfg.Events.File == "" {
		return nil
	}
	l, err := caserver.OpenEvents(cfg, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	e.Actor = localActor()
	events.Emit(context.Background(), l, e)
	if l.Failed() > 0 {
		return fmt.Errorf("events.file %s: the %s event was not recorded", cfg.Path(cfg.Events.File), e.Event)
	}
	return nil
}

// emitMint records a token mint: its id, never the token.
func emitMint(cfg *config.CA, name, token string) error {
	return emitLocal(cfg, events.Event{Event: events.TokenMint, Subject: name, Method: "token", Result: events.OK, TokenID: enroll.ClaimedID(token)})
}
