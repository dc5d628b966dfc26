package main

import "path/filepath"

// resolvePaths makes every relative file name in the configuration
// relative to the directory of the file it was read from, so a
// configuration and the keys, certificates and lists beside it work
// whatever directory serve is started in (a service manager usually starts
// it in /). Serial devices are left alone: "ttyUSB0" is not a file beside
// the configuration.
func (c *Config) resolvePaths(configPath string) {
	dir := filepath.Dir(configPath)
	fix := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	fix(&c.Persistence.DataDir)
	fix(&c.Auth.PasswordFile)
	fix(&c.Auth.ACLFile)
	fix(&c.Auth.AllowlistFile)
	for i := range c.DTLS {
		d := &c.DTLS[i]
		fix(&d.PSKFile)
		fix(&d.CertFile)
		fix(&d.KeyFile)
		fix(&d.ClientCAFile)
	}
	for i := range c.Broker.Listeners {
		l := &c.Broker.Listeners[i]
		fix(&l.CertFile)
		fix(&l.KeyFile)
		fix(&l.ClientCAFile)
	}
	for i := range c.Bridges {
		b := &c.Bridges[i]
		fix(&b.PasswordFile)
		fix(&b.TLS.CAFile)
		fix(&b.TLS.CertFile)
		fix(&b.TLS.KeyFile)
		fix(&b.Queue.Dir)
	}
}
