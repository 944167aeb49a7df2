package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/anchorsync"
	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
)

func newAnchorsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "anchors",
		Short: "Roles Anywhere trust anchors that receive this CA's CRL",
	}
	cmd.AddCommand(newAnchorsStatusCmd(), newAnchorsPushCmd(), newAnchorsAddCmd(), newAnchorsCreateCmd())
	return cmd
}

func newAnchorsStatusCmd() *cobra.Command {
	var a adminFlags
	cmd := &cobra.Command{
		Use:   "status [--dir DIR | --ca URL --root ROOT --admin-cert F --admin-key F]",
		Short: "Show which CRL each trust anchor holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list, err := c.Anchors(ctx)
			if err != nil {
				return fmt.Errorf("anchors status: %w", err)
			}
			printAnchors(cmd, list)
			return nil
		},
	}
	a.register(cmd, true)
	return cmd
}

func printAnchors(cmd *cobra.Command, list *apiv1.AnchorList) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Current CRL number: %d\n", list.CRLNumber)
	if len(list.Anchors) == 0 {
		fmt.Fprintln(out, "No trust anchors configured (anchorage-ca anchors add --arn ARN).")
		return
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRUST ANCHOR\tCRL\tSTATE\tPUSHED AT\tLAST ERROR")
	for _, s := range list.Anchors {
		state := "current"
		switch {
		case s.Regressed:
			state = fmt.Sprintf("REGRESSED (anchor holds %d)", s.HeldNumber)
		case s.CRLNumber < list.CRLNumber:
			state = "behind"
		}
		pushed := "-"
		if !s.PushedAt.IsZero() {
			pushed = s.PushedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ARN, s.CRLNumber, state, pushed, s.LastError)
	}
	tw.Flush()
}

func newAnchorsPushCmd() *cobra.Command {
	var a adminFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "push [--dir DIR | ...] [--timeout 60s]",
		Short: "Push the current CRL to every trust anchor now and wait until they hold it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			list, err := c.PushAnchors(ctx)
			if err != nil {
				return fmt.Errorf("anchors push: %w", err)
			}
			start := time.Now()
			_, err = waitAnchors(ctx, c, list.CRLNumber, start, cmd)
			return err
		},
	}
	a.register(cmd, true)
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}

func newAnchorsAddCmd() *cobra.Command {
	var dir, arn, region, endpoint string
	cmd := &cobra.Command{
		Use:   "add --dir DIR --arn ARN [--region R] [--endpoint URL]",
		Short: "Add a trust anchor to config.json (a running serve picks it up on SIGHUP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || arn == "" {
				return fmt.Errorf("--dir and --arn are required")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			if err := addAnchor(cfg, arn, region, endpoint); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added trust anchor %s to %s; send SIGHUP to anchorage-ca serve (systemctl reload) or restart it to start pushing CRLs there.\n", arn, filepath.Join(dir, config.FileName))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "CA directory")
	f.StringVar(&arn, "arn", "", "trust anchor ARN")
	f.StringVar(&region, "region", "", "region (default: the ARN's)")
	f.StringVar(&endpoint, "endpoint", "", "Roles Anywhere endpoint URL (default: AWS's for the region)")
	return cmd
}

func addAnchor(cfg *config.CA, arn, region, endpoint string) error {
	for _, t := range cfg.TrustAnchors {
		if t.ARN == arn {
			return fmt.Errorf("trust anchor %s is already configured", arn)
		}
	}
	cfg.TrustAnchors = append(cfg.TrustAnchors, config.TrustAnchor{ARN: arn, Region: region, Endpoint: endpoint})
	if err := cfg.Validate(); err != nil {
		return err
	}
	return cfg.Save()
}

func newAnchorsCreateCmd() *cobra.Command {
	var dir, name, region, endpoint string
	cmd := &cobra.Command{
		Use:   "create --dir DIR --region R [--name N] [--endpoint URL]",
		Short: "Register the issuing CA as a new Roles Anywhere trust anchor (AWS credentials from the environment) and add it to config.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || region == "" {
				return fmt.Errorf("--dir and --region are required")
			}
			cfg, err := config.Load(dir)
			if err != nil {
				return err
			}
			caPEM, err := os.ReadFile(cfg.Path(cfg.Paths.CACert))
			if err != nil {
				return err
			}
			if name == "" {
				name = anchorsync.SafeName(cfg.Name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
			if err != nil {
				return fmt.Errorf("AWS credentials: %w", err)
			}
			client := ra.NewFromConfig(awsCfg, func(o *ra.Options) {
				if endpoint != "" {
					o.BaseEndpoint = aws.String(endpoint)
				}
			})
			out, err := client.CreateTrustAnchor(ctx, &ra.CreateTrustAnchorInput{
				Name: aws.String(name), Enabled: aws.Bool(true),
				Source: &types.Source{SourceType: types.TrustAnchorTypeCertificateBundle,
					SourceData: &types.SourceDataMemberX509CertificateData{Value: string(caPEM)}},
			})
			if err != nil {
				return fmt.Errorf("CreateTrustAnchor: %w", err)
			}
			arn := aws.ToString(out.TrustAnchor.TrustAnchorArn)
			if err := addAnchor(cfg, arn, region, endpoint); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), arn)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "CA directory")
	f.StringVar(&name, "name", "", "trust anchor name (default from the CA name)")
	f.StringVar(&region, "region", "", "AWS region")
	f.StringVar(&endpoint, "endpoint", "", "Roles Anywhere endpoint URL (default: AWS's for the region)")
	return cmd
}
