package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the data file inside the data directory.
const FileName = "snwgw.db"

// format is the meta bucket's "format" value; a file without it is not a
// snwgw data file, one with another value was written by another version.
const format = "snwgw-store 1"

var (
	bucketMeta     = []byte("meta")
	bucketClients  = []byte("clients")
	bucketRetained = []byte("retained")
	bucketGateway  = []byte("gateway")
	keyFormat      = []byte("format")
	keyRecord      = []byte("r")
)

// ErrClosed is returned by a store that has been closed.
var ErrClosed = errors.New("store: closed")

// SyncMode says when a commit is flushed to the device.
type SyncMode int

const (
	// SyncAlways commits and flushes every batch before the
	// acknowledgements that wait on it go out: nothing acknowledged is lost.
	SyncAlways SyncMode = iota
	// SyncInterval acknowledges at once and commits every
	// Options.SyncInterval: a crash loses at most that much.
	SyncInterval
)

// DefaultSyncInterval is the commit period of SyncInterval.
const DefaultSyncInterval = time.Second

// compactMinSize and compactRatio decide when Open rewrites the file: when
// it is larger than compactMinSize and more than half of it is free pages
// (bbolt reuses free pages but never gives them back).
const compactMinSize = 8 << 20

// Options configure a DB.
type Options struct {
	Sync         SyncMode
	SyncInterval time.Duration // for SyncInterval; 0: DefaultSyncInterval
	// Logger receives commit failures and compaction notes; nil discards.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release
	// the file; 0: one second.
	LockTimeout time.Duration
}

// Stats are the store's running totals.
type Stats struct {
	Commits      uint64 // transactions committed
	Changes      uint64 // keys written or deleted
	Coalesced    uint64 // changes asked for that never reached the disk: superseded or undone in their batch
	Errors       uint64 // failed commits
	LastCommit   time.Duration
	FileSize     int64 // at the last commit
	PendingBatch int   // changes waiting now
}

// DB is an open data file. Its Broker and Gateway views are handed to the
// broker core and the gateway; Close flushes and closes it.
type DB struct {
	path string
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending *batch
	closed  bool
	// group is held for reading by Atomically and for writing while the
	// writer takes the pending batch, so a group's changes never straddle
	// two commits.
	group sync.RWMutex

	kick chan struct{} // a batch has work
	quit chan struct{} // Close asks the writer to finish
	done chan struct{} // the writer has finished

	commits, changes, coalesced, errs atomic.Uint64
	lastCommit, fileSize              atomic.Int64
}

// Open opens (or creates) the data file in dir. A file that is not a snwgw
// data file, is damaged or was written by a newer version is an error that
// names it and says what to do; it is never reset.
func Open(dir string, opts Options) (*DB, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	d := &DB{path: path, db: db, opts: opts, log: opts.Logger, pending: newBatch(),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if err := d.prepare(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := d.compactIfSparse(); err != nil {
		_ = d.db.Close()
		return nil, err
	}
	d.noteSize()
	go d.run()
	return d, nil
}

func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	// bbolt panics on some damaged pages; a damaged file is an error to
	// report, not a crash loop.
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The freelist is rebuilt at open instead of written by every
		// commit: one page less per commit on an SD card.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store: %s is locked by another process (is another snwgw running on this data directory?)", path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, damaged(path, err)
	}
	return nil, fmt.Errorf("store: opening %s: %w", path, err)
}

func damaged(path string, err error) error {
	return fmt.Errorf("store: %s is not a readable snwgw data file (%v); nothing was changed: "+
		"restore it from a backup, or move it aside to start with an empty store", path, err)
}

// prepare checks that the file is ours, or makes an empty one ours.
func (d *DB) prepare() error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			switch v := meta.Get(keyFormat); {
			case v == nil:
				return damaged(d.path, errors.New("no format marker"))
			case string(v) != format:
				return fmt.Errorf("store: %s has format %q, this snwgw reads %q: it was written by another version; "+
					"run that version, or move the file aside to start with an empty store", d.path, v, format)
			}
		} else {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("store: %s is a bbolt file of another program (it has no snwgw format marker); "+
					"point the data directory elsewhere or move the file aside", d.path)
			}
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte(format)); err != nil {
				return err
			}
		}
		for _, name := range [][]byte{bucketClients, bucketRetained, bucketGateway} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// compactIfSparse rewrites a file that is mostly free pages (after a burst
// of queued messages, say) into a new one and renames it into place, so the
// file follows the data rather than its peak.
func (d *DB) compactIfSparse() error {
	info, err := os.Stat(d.path)
	if err != nil || info.Size() < compactMinSize {
		return nil
	}
	st := d.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(d.db.Info().PageSize)
	if free*2 < info.Size() {
		return nil
	}
	tmp := d.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("store: compacting %s: %w", d.path, err)
	}
	if err := bolt.Compact(dst, d.db, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("store: compacting %s: %w", d.path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: compacting %s: %w", d.path, err)
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("store: compacting %s: %w", d.path, err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		return fmt.Errorf("store: compacting %s: %w", d.path, err)
	}
	if dir, err := os.Open(filepath.Dir(d.path)); err == nil {
		_ = dir.Sync() // the rename itself must survive a power cut
		_ = dir.Close()
	}
	after, _ := os.Stat(d.path)
	if after != nil {
		d.log.Info("store compacted", "file", d.path, "before", info.Size(), "after", after.Size())
	}
	d.db, err = openBolt(d.path, d.opts)
	return err
}

func (d *DB) noteSize() {
	if info, err := os.Stat(d.path); err == nil {
		d.fileSize.Store(info.Size())
	}
}

// Path returns the data file's path.
func (d *DB) Path() string { return d.path }

// Stats returns the store's running totals.
func (d *DB) Stats() Stats {
	d.mu.Lock()
	pending := d.pending.n
	d.mu.Unlock()
	return Stats{
		Commits: d.commits.Load(), Changes: d.changes.Load(), Coalesced: d.coalesced.Load(), Errors: d.errs.Load(),
		LastCommit: time.Duration(d.lastCommit.Load()), FileSize: d.fileSize.Load(), PendingBatch: pending,
	}
}

// change runs f on the pending batch and wakes the writer. It reports
// ErrClosed after Close.
func (d *DB) change(f func(b *batch)) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	f(d.pending)
	d.mu.Unlock()
	d.wake()
	return nil
}

func (d *DB) wake() {
	if d.opts.Sync == SyncInterval {
		return // the ticker commits
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// atomically runs fn so that the changes it makes are committed together.
func (d *DB) atomically(fn func()) {
	d.group.RLock()
	defer d.group.RUnlock()
	fn()
}

// afterCommit registers fn to run once everything changed so far is
// committed; after Close, or with SyncInterval, it runs at once.
func (d *DB) afterCommit(fn func()) {
	d.mu.Lock()
	if d.closed || d.opts.Sync == SyncInterval {
		d.mu.Unlock()
		fn()
		return
	}
	d.pending.waiters = append(d.pending.waiters, fn)
	d.mu.Unlock()
	d.wake()
}

// run is the writer: it takes the pending batch, commits it, and runs the
// callbacks waiting on it, until Close.
func (d *DB) run() {
	defer close(d.done)
	var tick <-chan time.Time
	if d.opts.Sync == SyncInterval {
		t := time.NewTicker(d.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-d.kick:
		case <-tick:
		case <-d.quit:
			d.flush()
			return
		}
		d.flush()
	}
}

// flush commits the pending batch and runs its waiters. A failed commit (a
// full or failing disk) is logged and counted, and its waiters run all the
// same: the in-memory state stays authoritative, and holding
// acknowledgements until the disk recovers would stall every client.
func (d *DB) flush() {
	d.group.Lock()
	d.mu.Lock()
	b := d.pending
	d.pending = newBatch()
	d.mu.Unlock()
	d.group.Unlock()
	if b.n == 0 && len(b.waiters) == 0 {
		return
	}
	if b.n > 0 {
		start := time.Now()
		err := d.db.Update(b.apply)
		d.lastCommit.Store(int64(time.Since(start)))
		if err != nil {
			d.errs.Add(1)
			d.log.Error("store commit failed: these changes are not on disk", "file", d.path, "changes", b.n, "err", err)
		} else {
			d.commits.Add(1)
			d.changes.Add(uint64(b.written))
			d.coalesced.Add(uint64(max(b.n-b.written, 0)))
			d.noteSize()
		}
	}
	for _, fn := range b.waiters {
		fn()
	}
}

// Close commits what is pending, runs the waiting callbacks and closes the
// file. It is idempotent.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.quit)
	<-d.done
	return d.db.Close()
}

// view runs f in a read transaction, turning a bbolt panic over a damaged
// page into an error that names the file.
func (d *DB) view(f func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(d.path, fmt.Errorf("%v", r))
		}
	}()
	err = d.db.View(f)
	if errors.Is(err, errCorrupt) {
		err = damaged(d.path, err)
	}
	return err
}
