package caserver

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/anchorage-pki/anchorage/anchorsync"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
)

// awsCredentials builds the credentials anchorsync signs with.
func awsCredentials(ctx context.Context, cfg *config.CA) (aws.CredentialsProvider, error) {
	if cfg.AWS == nil || cfg.AWS.Credentials == "" || cfg.AWS.Credentials == "default" {
		c, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("AWS default credentials: %w", err)
		}
		return c.Credentials, nil
	}
	r := cfg.AWS.RolesAnywhere
	client, err := rolesanywhere.NewClient(rolesanywhere.Config{
		TrustAnchorARN: r.TrustAnchorARN, ProfileARN: r.ProfileARN, RoleARN: r.RoleARN,
		Region: r.Region, Endpoint: r.Endpoint, SessionDuration: r.SessionDuration,
	})
	if err != nil {
		return nil, fmt.Errorf(`"aws.rolesAnywhere": %w`, err)
	}
	src, err := rolesanywhere.NewFileSource(ctx, rolesanywhere.SourceConfig{
		Certificate: cfg.Path(r.Certificate), PrivateKey: cfg.Path(r.PrivateKey), Intermediates: optionalPath(cfg, r.Intermediates),
	})
	if err != nil {
		return nil, fmt.Errorf(`"aws.rolesAnywhere": %w`, err)
	}
	return aws.NewCredentialsCache(rolesanywhere.Provider{Cache: rolesanywhere.NewCache(client, src, 0)}), nil
}

func optionalPath(cfg *config.CA, p string) string {
	if p == "" {
		return ""
	}
	return cfg.Path(p)
}

func anchorsOf(cfg *config.CA) []anchorsync.Anchor {
	var anchors []anchorsync.Anchor
	for _, a := range cfg.TrustAnchors {
		anchors = append(anchors, anchorsync.Anchor{ARN: a.ARN, Region: a.Region, Endpoint: a.Endpoint})
	}
	return anchors
}

// newPusher builds anchorsync even with no anchors configured yet, so a
// reload can add some without a restart.
func newPusher(ctx context.Context, cfg *config.CA, s *Server) (*anchorsync.Pusher, error) {
	creds, err := awsCredentials(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return anchorsync.New(ctx, anchorsync.Options{
		Anchors: anchorsOf(cfg), CRLName: "anchorage-" + anchorsync.SafeName(cfg.Name), Source: s.CRL, Store: s.Store,
		Client: anchorsync.SDKClients(creds, nil), Verify: cfg.AnchorCheck.D(), Issuer: s.Issuer,
		MaxLifetime: cfg.Leaf.MaxLifetime.D(), Logger: s.log, Meter: s.Metrics, Events: sink(s.Events),
	})
}

// Reload re-reads config.json and applies what can change while running:
// the trust anchors (anchors add/create), the legacy admin fingerprints
// ("admins") and a service intermediate that appeared on disk. Other keys need a restart.
func (s *Server) Reload(ctx context.Context) error {
	cfg, err := config.Load(s.Config.Dir())
	if err != nil {
		return err
	}
	if err := s.Anchors.SetAnchors(ctx, anchorsOf(cfg)); err != nil {
		return err
	}
	s.Config.TrustAnchors = cfg.TrustAnchors
	if err := s.reloadAdmins(ctx, cfg); err != nil {
		return err
	}
	// A service intermediate made by `anchorage-ca service-ca` while
	// serve runs takes over the API's TLS certificate now.
	if err := s.renewTLSIfDue(ctx, time.Now()); err != nil {
		s.log.Error("API TLS certificate renewal failed", "err", err)
	}
	s.log.Info("configuration reloaded", "trust_anchors", len(cfg.TrustAnchors), "legacy_admins", len(cfg.Admins))
	return nil
}
