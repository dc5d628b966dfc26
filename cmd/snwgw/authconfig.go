package main

import (
	"github.com/snwgw/snwgw/auth"
	"github.com/snwgw/snwgw/mqttcore"
)

// AuthConfig is [auth]: who may connect to the broker and what every client,
// MQTT or MQTT-SN, may publish and subscribe to.
type AuthConfig struct {
	PasswordFile   string `toml:"password_file"`
	AllowAnonymous *bool  `toml:"allow_anonymous"`
	ACLFile        string `toml:"acl_file"`
}

// authorizer loads the files [auth] names and returns the broker's
// authorizer: nil (everything allowed) when [auth] is empty.
func (a AuthConfig) authorizer() (mqttcore.Authorizer, error) {
	if a.PasswordFile == "" && a.ACLFile == "" && a.AllowAnonymous == nil {
		return nil, nil
	}
	var opts auth.Options
	if a.PasswordFile != "" {
		pw, err := auth.LoadPasswordFile(a.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.Passwords = pw
	}
	if a.ACLFile != "" {
		acl, err := auth.LoadACLFile(a.ACLFile)
		if err != nil {
			return nil, err
		}
		opts.ACL = acl
	}
	if a.AllowAnonymous != nil {
		opts.Anonymous = auth.AnonymousDeny
		if *a.AllowAnonymous {
			opts.Anonymous = auth.AnonymousAllow
		}
	}
	return auth.NewAuthorizer(opts), nil
}
