package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// outQueue holds the QoS 1 and 2 messages waiting for the upstream broker,
// in order. The entries are kept in memory; with a directory every entry is
// also a file named by its sequence number, written and synced before push
// returns and removed when the entry leaves, so a restart finds what was
// left (the same write-through pattern as mqttcore's Store).
//
// The pump pushes, the sender peeks and removes; mu guards the fields.
type outQueue struct {
	dir string

	mu      sync.Mutex
	entries []*entry // oldest first
	sending *entry   // the entry the sender has in flight upstream, if any
	nextSeq uint64
	ready   chan struct{} // capacity 1: something was pushed
}

// queueSuffix ends the name of every queue file; a file that cannot be
// decoded is renamed with corruptSuffix added and never read again.
const (
	queueSuffix   = ".msg"
	corruptSuffix = ".corrupt"
)

func newOutQueue() *outQueue {
	return &outQueue{ready: make(chan struct{}, 1), nextSeq: 1}
}

// openDiskQueue loads the queue kept in dir (creating dir if needed) and
// returns it with the number of files it set aside as corrupt.
func openDiskQueue(dir string) (*outQueue, int, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, 0, fmt.Errorf("bridge: queue directory: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("bridge: queue directory: %w", err)
	}
	q := newOutQueue()
	q.dir = dir
	corrupt := 0
	for _, de := range des { // ReadDir sorts by name; names are zero-padded
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasSuffix(name, queueSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, queueSuffix), 10, 64)
		path := filepath.Join(dir, name)
		var e *entry
		if err == nil {
			var b []byte
			if b, err = os.ReadFile(path); err == nil {
				e, err = decodeEntry(b)
			}
		}
		if err != nil {
			corrupt++
			if rerr := os.Rename(path, path+corruptSuffix); rerr != nil {
				return nil, 0, fmt.Errorf("bridge: set aside corrupt queue file: %w", rerr)
			}
			continue
		}
		e.seq = seq
		q.entries = append(q.entries, e)
		q.nextSeq = max(q.nextSeq, seq+1)
	}
	return q, corrupt, nil
}

func (q *outQueue) fileName(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, queueSuffix))
}

func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// push appends e, first writing it to disk when persist is set (the queue
// must have a directory). It does not check the limit: the pump applies the
// policy before it pushes.
func (q *outQueue) push(e *entry, persist bool) error {
	q.mu.Lock()
	e.seq = 0
	if persist {
		e.seq = q.nextSeq
		q.nextSeq++
	}
	q.mu.Unlock()
	if persist {
		if err := q.write(e); err != nil {
			return err
		}
	}
	q.mu.Lock()
	q.entries = append(q.entries, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return nil
}

// write stores e in a temporary file, syncs it and renames it into place,
// so a crash leaves either the whole entry or none.
func (q *outQueue) write(e *entry) error {
	b, err := appendEntry(nil, e)
	if err != nil {
		return err
	}
	name := q.fileName(e.seq)
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("bridge: queue write: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("bridge: queue write: %w", err)
	}
	return nil
}

// syncDir makes the renames of the files written so far durable; the pump
// calls it once per batch of pushes.
func (q *outQueue) syncDir() error {
	if q.dir == "" {
		return nil
	}
	d, err := os.Open(q.dir)
	if err != nil {
		return fmt.Errorf("bridge: queue sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bridge: queue sync: %w", err)
	}
	return nil
}

// next returns the oldest entry without removing it and marks it as in
// flight, so the drop-oldest policy passes over it.
func (q *outQueue) next() (*entry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.entries) == 0 {
		q.sending = nil
		return nil, false
	}
	q.sending = q.entries[0]
	return q.sending, true
}

// dropOldest removes and returns the oldest entry that is not in flight
// upstream (an entry in flight may already have arrived), for the
// drop-oldest policy.
func (q *outQueue) dropOldest() (*entry, error) {
	q.mu.Lock()
	var e *entry
	for _, c := range q.entries {
		if c != q.sending {
			e = c
			break
		}
	}
	q.mu.Unlock()
	if e == nil {
		return nil, nil
	}
	_, err := q.remove(e)
	return e, err
}

// remove takes e out of the queue, and off the disk, if it is still there,
// and reports whether it was.
func (q *outQueue) remove(e *entry) (bool, error) {
	q.mu.Lock()
	if q.sending == e {
		q.sending = nil
	}
	i := slices.Index(q.entries, e)
	if i < 0 {
		q.mu.Unlock()
		return false, nil
	}
	q.entries = slices.Delete(q.entries, i, i+1)
	q.mu.Unlock()
	if e.seq != 0 {
		if err := os.Remove(q.fileName(e.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("bridge: queue remove: %w", err)
		}
	}
	return true, nil
}
