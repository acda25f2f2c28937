package audit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/database"
)

// Defaults of a Writer.
const (
	// DefaultRetention is how long events are kept: 90 days.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultBuffer is how many events may wait for the writer loop.
	DefaultBuffer = 4096
	// maxBatch is how many events one INSERT carries.
	maxBatch = 200
	// purgeEvery is how often events past the retention are deleted.
	purgeEvery = time.Hour
)

// Config configures a Writer.
type Config struct {
	// Retention is how long events are kept; older ones are deleted hourly.
	// Zero means DefaultRetention; negative keeps events forever.
	Retention time.Duration
	// Buffer is how many events may wait to be written; past it, new ones
	// are dropped (and counted). Zero means DefaultBuffer.
	Buffer int
}

// Writer records events without ever blocking its caller: Record puts the
// event into a bounded buffer and a background loop writes it to the
// database and the log. A full buffer drops the event and counts it. A nil
// *Writer records nothing, so code may call it unconditionally.
type Writer struct {
	db     *database.DB
	logger *zap.Logger
	events chan Event
	flush  chan chan struct{}

	retention atomic.Int64 // time.Duration

	dropped atomic.Uint64
	failed  atomic.Uint64
	written atomic.Uint64

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewWriter starts a Writer over db; logger receives one entry per event
// (the JSON log's copy of the trail) and the writer's own errors. Close it
// to write what is buffered and stop.
func NewWriter(db *database.DB, logger *zap.Logger, cfg Config) *Writer {
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		db:     db,
		logger: logger,
		events: make(chan Event, cfg.Buffer),
		flush:  make(chan chan struct{}),
		stop:   cancel,
		done:   make(chan struct{}),
	}
	w.SetRetention(cfg.Retention)
	go w.loop(ctx)
	return w
}

// SetRetention replaces the retention (a config reload calls it).
func (w *Writer) SetRetention(d time.Duration) {
	if w == nil {
		return
	}
	if d == 0 {
		d = DefaultRetention
	}
	w.retention.Store(int64(d))
}

// Retention is how long events are kept; negative: forever.
func (w *Writer) Retention() time.Duration {
	if w == nil {
		return 0
	}
	return time.Duration(w.retention.Load())
}

// Record queues e to be written. It never blocks: when the buffer is full
// the event is dropped and counted (see Dropped).
func (w *Writer) Record(e Event) {
	if w == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
	}
}

// Dropped is how many events were lost because the buffer was full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Failed is how many events the database refused (they are in the log).
func (w *Writer) Failed() uint64 { return w.failed.Load() }

// Written is how many events reached the database.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Flush waits until every event recorded before the call has been written
// (or ctx ends).
func (w *Writer) Flush(ctx context.Context) error {
	if w == nil {
		return nil
	}
	ack := make(chan struct{})
	select {
	case w.flush <- ack:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is buffered (for at most 10 seconds) and stops the loop.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.stopOnce.Do(w.stop)
	<-w.done
	return nil
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	w.purge(ctx)
	batch := make([]Event, 0, maxBatch)
	for {
		select {
		case e := <-w.events:
			batch = append(batch[:0], e)
			batch = w.drain(batch)
			w.write(ctx, batch)
		case ack := <-w.flush:
			// Everything recorded before the flush is in the channel.
			for {
				batch = w.drain(batch[:0])
				if len(batch) == 0 {
					break
				}
				w.write(ctx, batch)
			}
			close(ack)
		case <-purge.C:
			w.purge(ctx)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				batch = w.drain(batch[:0])
				if len(batch) == 0 || final.Err() != nil {
					return
				}
				w.write(final, batch)
			}
		}
	}
}

// drain appends what waits in the channel, up to a batch.
func (w *Writer) drain(batch []Event) []Event {
	for len(batch) < maxBatch {
		select {
		case e := <-w.events:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// write logs each event and inserts the batch.
func (w *Writer) write(ctx context.Context, batch []Event) {
	for i := range batch {
		batch[i] = batch[i].Sanitized()
		w.log(batch[i])
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := Insert(wctx, w.db, batch...); err != nil {
		w.failed.Add(uint64(len(batch)))
		w.logger.Error("writing audit events to the database; they are in this log only", zap.Int("events", len(batch)), zap.Error(err))
		return
	}
	w.written.Add(uint64(len(batch)))
}

func (w *Writer) log(e Event) {
	fields := make([]zap.Field, 0, 8)
	fields = append(fields, zap.String("kind", string(e.Kind)), zap.Time("at", e.Time))
	for _, f := range [][2]string{{"actor", e.Actor}, {"actor_id", e.ActorID}, {"subject", e.Subject}, {"client_ip", e.ClientIP}, {"outcome", e.Outcome}} {
		if f[1] != "" {
			fields = append(fields, zap.String(f[0], f[1]))
		}
	}
	if len(e.Details) > 0 {
		fields = append(fields, zap.Any("details", e.Details))
	}
	w.logger.Info("audit", fields...)
}

func (w *Writer) purge(ctx context.Context) {
	ret := w.Retention()
	if ret < 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := DeleteBefore(pctx, w.db, time.Now().Add(-ret))
	switch {
	case err != nil && ctx.Err() == nil:
		w.logger.Warn("deleting audit events past the retention", zap.Error(err))
	case n > 0:
		w.logger.Info("deleted audit events past the retention", zap.Int64("events", n), zap.Duration("retention", ret))
	}
}
