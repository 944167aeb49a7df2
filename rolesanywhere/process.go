package rolesanywhere

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
)

// Options is what the three commands share: where to send CreateSession
// and where the identity comes from.
type Options struct {
	Client Config
	Source SourceConfig
	// Cache, if set, lets credential-process runs share credentials
	// across processes; serve and update keep theirs in memory.
	Cache *FileCache
}

// open builds the client and loads the identity source.
func (o Options) open(ctx context.Context) (*Client, *FileSource, error) {
	client, err := NewClient(o.Client)
	if err != nil {
		return nil, nil, err
	}
	src, err := NewFileSource(ctx, o.Source)
	if err != nil {
		return nil, nil, err
	}
	return client, src, nil
}

// processOutput is the credential_process format. Field order matters to
// people diffing against the helper's output, so it is a struct.
type processOutput struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// WriteCredentialProcess writes c as one line of compact JSON with no
// trailing newline, exactly as the helper does. Expiration is the
// service's string, unchanged.
func WriteCredentialProcess(w io.Writer, c Credentials) error {
	b, err := json.Marshal(processOutput{
		Version:         1,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Expiration:      c.Expiration,
	})
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// FetchCredentials loads the identity and calls CreateSession once.
func FetchCredentials(ctx context.Context, opts Options) (Credentials, error) {
	client, src, err := opts.open(ctx)
	if err != nil {
		return Credentials{}, err
	}
	id, err := src.Identity(ctx)
	if err != nil {
		return Credentials{}, err
	}
	sess, err := client.CreateSession(ctx, id)
	if err != nil {
		return Credentials{}, err
	}
	return sess.Credentials, nil
}

// CredentialProcess runs the credential-process command and returns the
// exit code. On failure stdout stays empty and stderr gets one log-style
// line ("2006/01/02 15:04:05 <error>"), because that is what tools wrapping
// the helper parse.
func CredentialProcess(ctx context.Context, opts Options, stdout, stderr io.Writer) int {
	var creds Credentials
	var err error
	if opts.Cache != nil {
		creds, err = opts.Cache.Credentials(ctx, opts)
	} else {
		creds, err = FetchCredentials(ctx, opts)
	}
	if err == nil {
		err = WriteCredentialProcess(stdout, creds)
	}
	if err != nil {
		log.New(stderr, "", log.LstdFlags).Println(err)
		return 1
	}
	return 0
}
