package archive

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

const (
	writeChunk   = 1 << 20
	writeBuffers = 4
)

// fileWriter writes file contents in a goroutine of its own, so that the
// extractor can decompress the next chunk while the previous one goes to
// disk. Jobs run in order; the first error stops all later writes.
type fileWriter struct {
	jobs   chan writeJob
	free   chan []byte
	made   int
	done   chan struct{}
	failed atomic.Bool

	mu  sync.Mutex
	err error
}

type writeJob struct {
	f     *os.File
	entry string
	data  []byte        // a chunk to write; nil with f set means close f
	ack   chan struct{} // a barrier: closed once every earlier job is done
}

func newFileWriter() *fileWriter {
	w := &fileWriter{
		jobs: make(chan writeJob, writeBuffers),
		free: make(chan []byte, writeBuffers),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *fileWriter) run() {
	defer close(w.done)
	for job := range w.jobs {
		switch {
		case job.ack != nil:
			close(job.ack)
		case job.data != nil:
			if !w.failed.Load() {
				if _, err := job.f.Write(job.data); err != nil {
					w.fail(fmt.Errorf("write %q: %w", job.entry, err))
				}
			}
			w.free <- job.data[:cap(job.data)]
		default:
			if err := job.f.Close(); err != nil {
				w.fail(fmt.Errorf("write %q: %w", job.entry, err))
			}
		}
	}
}

func (w *fileWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.failed.Store(true)
}

// error returns the first write error so far.
func (w *fileWriter) error() error {
	if !w.failed.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// buffer returns an empty chunk buffer, waiting for one when all are queued.
func (w *fileWriter) buffer() []byte {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.made < writeBuffers {
		w.made++
		return make([]byte, writeChunk)
	}
	return <-w.free
}

func (w *fileWriter) write(f *os.File, entry string, data []byte) {
	w.jobs <- writeJob{f: f, entry: entry, data: data}
}

func (w *fileWriter) close(f *os.File, entry string) {
	w.jobs <- writeJob{f: f, entry: entry}
}

// sync waits until every queued job is done and returns the first error.
func (w *fileWriter) sync() error {
	ack := make(chan struct{})
	w.jobs <- writeJob{ack: ack}
	<-ack
	return w.error()
}

// stop finishes every queued job, ends the goroutine and returns the first
// error.
func (w *fileWriter) stop() error {
	close(w.jobs)
	<-w.done
	return w.error()
}
