package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anchorage-pki/anchorage/caclient"
)

// waitCRL polls the CA until its newest CRL covers revocation sequence seq
// and returns that CRL's number.
func waitCRL(ctx context.Context, c *caclient.Client, seq uint64) (uint64, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := c.Anchors(ctx)
		if err == nil && list.CRLSeq >= seq {
			return list.CRLNumber, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("its newest CRL covers revocations up to %d", list.CRLSeq)
			}
			return 0, fmt.Errorf("timed out waiting for a CRL carrying revocation %d: %w", seq, err)
		case <-tick.C:
		}
	}
}

// waitAnchors polls the CA until every trust anchor holds a CRL numbered
// at least want, printing each anchor as it gets there with the time since
// start. It returns the per-anchor durations.
func waitAnchors(ctx context.Context, c *caclient.Client, want uint64, start time.Time, cmd *cobra.Command) (map[string]time.Duration, error) {
	out := cmd.OutOrStdout()
	done := map[string]time.Duration{}
	var lastErrs map[string]string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := c.Anchors(ctx)
		if err == nil {
			if len(list.Anchors) == 0 {
				return done, errors.New("no trust anchors are configured: nothing enforces this CRL in AWS (anchorage-ca anchors add)")
			}
			lastErrs = map[string]string{}
			for _, a := range list.Anchors {
				if _, ok := done[a.ARN]; ok {
					continue
				}
				if a.CRLNumber >= want {
					d := time.Since(start)
					done[a.ARN] = d
					fmt.Fprintf(out, "enforced at %s: CRL %d, %.2fs after the request (%s)\n", a.ARN, a.CRLNumber, d.Seconds(), time.Now().UTC().Format(time.RFC3339))
				} else if a.LastError != "" {
					lastErrs[a.ARN] = a.LastError
				} else {
					lastErrs[a.ARN] = fmt.Sprintf("holds CRL %d", a.CRLNumber)
				}
			}
			if len(done) == len(list.Anchors) {
				fmt.Fprintf(out, "CRL %d is enforced at all %d trust anchor(s), %.2fs after the request\n", want, len(done), time.Since(start).Seconds())
				return done, nil
			}
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for arn, e := range lastErrs {
				fmt.Fprintf(&b, "; %s: %s", arn, e)
			}
			if err != nil {
				fmt.Fprintf(&b, "; CA: %v", err)
			}
			return done, fmt.Errorf("timed out waiting for CRL %d at %d trust anchor(s)%s", want, len(lastErrs), b.String())
		case <-tick.C:
		}
	}
}
