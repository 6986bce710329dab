package archive

import (
	"context"
	"errors"
	"io"
	"sync"
)

const (
	streamChunk   = 1 << 20
	streamBuffers = 8
)

// Stream unpacks a tar archive (as ExtractTar) while it is being written,
// in a goroutine of its own, so that a download, its hashing and the
// unpacking overlap. Up to 8 MiB of written data waits in memory; beyond
// that Write blocks until the extractor catches up.
//
// Writes come from one goroutine. End the stream with exactly one Close
// (all data written) or Abort (give up); both wait for the extractor.
type Stream struct {
	cancel context.CancelFunc
	full   chan []byte
	free   chan []byte
	made   int
	done   chan struct{}
	err    error // extraction result, set before done is closed

	mu       sync.Mutex
	abortErr error
	closed   bool

	cur []byte // reader's current chunk
	pos int
}

// NewTarStream starts extracting into dest and returns the writer that
// feeds it.
func NewTarStream(ctx context.Context, dest string) *Stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		cancel: cancel,
		full:   make(chan []byte, streamBuffers),
		free:   make(chan []byte, streamBuffers),
		done:   make(chan struct{}),
	}
	go func() {
		s.err = ExtractTar(ctx, &streamReader{s}, dest)
		close(s.done)
	}()
	return s
}

// errEndedEarly is returned by Write when the extractor stopped without an
// error but before the data ended (which ExtractTar never does).
var errEndedEarly = errors.New("archive extraction ended before its input")

// Write queues a copy of p for the extractor. It returns the extractor's
// error if extraction has failed.
func (s *Stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		var buf []byte
		select {
		case buf = <-s.free:
		default:
			if s.made < streamBuffers {
				s.made++
				buf = make([]byte, streamChunk)
			} else {
				select {
				case buf = <-s.free:
				case <-s.done:
					return n, s.failure()
				}
			}
		}
		c := copy(buf[:cap(buf)], p)
		select {
		case s.full <- buf[:c]:
		case <-s.done:
			return n, s.failure()
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

func (s *Stream) failure() error {
	if s.err != nil {
		return s.err
	}
	return errEndedEarly
}

// Close marks the end of the data, waits for the extractor and returns its
// result.
func (s *Stream) Close() error {
	s.end(nil)
	<-s.done
	s.cancel()
	return s.err
}

// Abort stops the extractor (its reads fail with err, or io.ErrUnexpectedEOF
// when err is nil) and waits until it has stopped writing files.
func (s *Stream) Abort(err error) {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	s.end(err)
	s.cancel()
	<-s.done
}

func (s *Stream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.abortErr = err
	close(s.full)
}

type streamReader struct{ s *Stream }

func (r *streamReader) Read(p []byte) (int, error) {
	s := r.s
	for s.pos >= len(s.cur) {
		if s.cur != nil {
			select {
			case s.free <- s.cur[:cap(s.cur)]:
			default:
			}
			s.cur = nil
		}
		buf, ok := <-s.full
		if !ok {
			s.mu.Lock()
			err := s.abortErr
			s.mu.Unlock()
			if err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		s.cur, s.pos = buf, 0
	}
	n := copy(p, s.cur[s.pos:])
	s.pos += n
	return n, nil
}
