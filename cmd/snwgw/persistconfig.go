package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snwgw/snwgw/store"
)

// PersistenceConfig is the [persistence] table: where and how the broker's
// and the gateway's state is kept across restarts.
type PersistenceConfig struct {
	// Enabled defaults to true: a gateway that loses acknowledged messages
	// at a power cut surprises everyone.
	Enabled      *bool    `toml:"enabled"`
	DataDir      string   `toml:"data_dir"`
	Sync         string   `toml:"sync"` // always, interval
	SyncInterval Duration `toml:"sync_interval"`
}

const (
	syncAlways   = "always"
	syncInterval = "interval"
)

// dataDirName is the data directory's name beside the configuration file,
// or in the working directory without one.
const dataDirName = "snwgw-data"

func (p *PersistenceConfig) enabled() bool { return p.Enabled == nil || *p.Enabled }

// defaultDataDir is systemd's StateDirectory when the service manager set
// one (the first, if several), else snwgw-data beside the configuration
// file, else in the working directory.
func defaultDataDir(configPath string) string {
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return d
	}
	if configPath != "" {
		return filepath.Join(filepath.Dir(configPath), dataDirName)
	}
	return dataDirName
}

func (p *PersistenceConfig) validate() error {
	switch p.Sync {
	case "", syncAlways, syncInterval:
	default:
		return fmt.Errorf("sync %q is neither %q nor %q", p.Sync, syncAlways, syncInterval)
	}
	if d := p.SyncInterval.Duration; d < 0 || d > 0 && d < 10*time.Millisecond {
		return fmt.Errorf("sync_interval %v is below 10ms", d)
	}
	if p.enabled() && p.DataDir == "" {
		return errors.New("data_dir is empty")
	}
	return nil
}

func (p *PersistenceConfig) options(log *slog.Logger) store.Options {
	o := store.Options{SyncInterval: p.SyncInterval.Duration, Logger: log}
	if p.Sync == syncInterval {
		o.Sync = store.SyncInterval
	}
	return o
}

// withDefaults writes out the defaults for `config check`.
func (p PersistenceConfig) withDefaults() PersistenceConfig {
	on := p.enabled()
	p.Enabled = &on
	if p.Sync == "" {
		p.Sync = syncAlways
	}
	if p.SyncInterval.Duration == 0 {
		p.SyncInterval = Duration{store.DefaultSyncInterval}
	}
	return p
}
