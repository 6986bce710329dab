// Package download is devbundle's single way to fetch files over HTTP: the
// checksum policy (see CheckPolicy), hashing while the bytes arrive,
// streaming to a caller's sink (an extractor, say) in the same pass, and
// resuming with HTTP Range requests both after a dropped connection and in a
// later run after an interruption.
package download

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/iox"
)

// Progress receives download progress. The CLI adapts it to a progress bar
// on a terminal. Start is called once with the total size (-1 when the server
// does not say), Add with every chunk (including bytes replayed from an
// earlier run), and Done once when Fetch returns, whatever the outcome.
type Progress interface {
	Start(total int64)
	Add(n int64)
	Done()
}

// Options describe one download.
type Options struct {
	// URL is the http or https URL to fetch.
	URL string
	// Checksum is the expected digest; the zero value means none is known,
	// in which case CheckPolicy decides whether the download may happen.
	Checksum Checksum
	// Insecure allows a plain-HTTP download without a checksum.
	Insecure bool
	// PartialPath is where the bytes are kept while downloading. It must be
	// stable across runs for the same URL, so that an interrupted download
	// resumes; a small PartialPath+".json" file beside it records what the
	// bytes belong to. Both are removed on success and on a checksum
	// mismatch, and kept after any other failure.
	PartialPath string
	// Sink, when set, receives the whole file exactly once, in order, as it
	// arrives (bytes kept from an earlier run are replayed into it first).
	// An error from Sink ends the download with that error.
	Sink io.Writer
	// Client is the HTTP client; nil means a default client. Redirects are
	// followed (at most 10) through it.
	Client *http.Client
	// Progress, when set, receives progress reports.
	Progress Progress
	// Warn, when set, receives warnings such as a missing checksum.
	Warn func(msg string)
	// MaxAttempts bounds the connection attempts made in a row without any
	// progress; 0 means 5. 1 disables retries.
	MaxAttempts int
	// RetryDelay is the first pause between attempts, doubled after every
	// failed one up to 30 s; 0 means 1 s.
	RetryDelay time.Duration
	// StallTimeout ends a connection that delivers no bytes for this long,
	// so that it is retried; 0 means 60 s.
	StallTimeout time.Duration
	// UserAgent is sent with every request when set.
	UserAgent string
}

// Result describes a finished download.
type Result struct {
	// Size is the number of bytes in the file.
	Size int64
	// Checksum is the verified checksum when one was given, otherwise the
	// sha256 computed while downloading.
	Checksum Checksum
	// Resumed reports that bytes kept from an earlier run were reused.
	Resumed bool
}

// StatusError reports an HTTP response that is not a success.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string {
	hint := ""
	switch {
	case e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone:
		hint = "; check the URL, name and version"
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		hint = "; the server refused access"
	case e.StatusCode >= 500:
		hint = "; the server failed, try again later"
	}
	return fmt.Sprintf("download %q: server answered %q%s", e.URL, e.Status, hint)
}

const (
	chunkSize       = 1 << 20
	maxRedirects    = 10
	defaultAttempts = 5
	maxRetryDelay   = 30 * time.Second
)

// partialState is stored beside the partial file: what its bytes belong to.
type partialState struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size"`
}

// RemovePartial deletes the partial file at path and its state file. Callers
// use it when the content turned out to be unusable (an archive that was
// refused, say), so that the next run starts afresh.
func RemovePartial(path string) error {
	err1 := os.Remove(path)
	err2 := os.Remove(path + ".json")
	if err1 != nil && !errors.Is(err1, os.ErrNotExist) {
		return fmt.Errorf("remove partial download: %w", err1)
	}
	if err2 != nil && !errors.Is(err2, os.ErrNotExist) {
		return fmt.Errorf("remove partial download: %w", err2)
	}
	return nil
}

// Fetch downloads opts.URL, applying CheckPolicy, streaming the bytes to the
// hash, opts.Sink and the partial file in one pass, and verifying the
// checksum at the end. See Options for resuming and retries.
func Fetch(ctx context.Context, opts Options) (Result, error) {
	warning, err := CheckPolicy(opts.URL, opts.Checksum, opts.Insecure)
	if err != nil {
		return Result{}, err
	}
	if opts.PartialPath == "" {
		return Result{}, errors.New("download: no partial file path given")
	}
	if warning != "" && opts.Warn != nil {
		opts.Warn(warning)
	}
	f := &fetcher{opts: opts, total: -1}
	f.client = f.redirectClient()
	if f.opts.MaxAttempts <= 0 {
		f.opts.MaxAttempts = defaultAttempts
	}
	if f.opts.RetryDelay <= 0 {
		f.opts.RetryDelay = time.Second
	}
	if f.opts.StallTimeout <= 0 {
		f.opts.StallTimeout = 60 * time.Second
	}
	return f.run(ctx)
}

type fetcher struct {
	opts   Options
	client *http.Client
	file   *os.File
	hash   hash.Hash
	buf    []byte

	done    int64 // bytes delivered in this run (and present in the file)
	pending int64 // bytes in the file from an earlier run, not yet replayed
	total   int64 // full size, -1 when unknown
	state   partialState
	resumed bool

	started bool
}

// errRestart asks the loop to try again at once, without counting a failure
// (a kept partial file turned out unusable and was dropped).
var errRestart = errors.New("restart from the beginning")

// errStalled cancels a connection that stopped delivering bytes.
var errStalled = errors.New("no data received for too long")

// fatalError marks an error that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error { return &fatalError{err: err} }

func (f *fetcher) run(ctx context.Context) (res Result, err error) {
	if err := os.MkdirAll(filepath.Dir(f.opts.PartialPath), 0o755); err != nil {
		return Result{}, fmt.Errorf("download %q: %w", f.opts.URL, err)
	}
	if err := f.openPartial(); err != nil {
		return Result{}, err
	}
	defer func() {
		if f.file != nil {
			_ = f.file.Close()
			if err != nil && f.done == 0 && f.pending == 0 {
				// Nothing worth resuming: leave no empty partial file.
				_ = RemovePartial(f.opts.PartialPath)
			}
		}
		if f.started && f.opts.Progress != nil {
			f.opts.Progress.Done()
		}
	}()
	f.hash = f.opts.Checksum.NewHash()
	f.buf = make([]byte, chunkSize)

	failures := 0
	delay := f.opts.RetryDelay
	for {
		before := f.done
		err := f.attempt(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errRestart) {
			continue
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("download %q interrupted (run again to resume): %w", f.opts.URL, context.Cause(ctx))
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return Result{}, fe.err
		}
		if f.done > before {
			failures = 0
			delay = f.opts.RetryDelay
		}
		failures++
		if failures >= f.opts.MaxAttempts {
			return Result{}, fmt.Errorf("%w (gave up after %d attempts; run again to resume)", err, failures)
		}
		if f.opts.Warn != nil {
			f.opts.Warn(fmt.Sprintf("retrying in %s: %v", delay, err))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, fmt.Errorf("download %q interrupted (run again to resume): %w", f.opts.URL, context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}

	if err := f.opts.Checksum.Verify(f.opts.URL, f.hash); err != nil {
		_ = f.file.Close()
		f.file = nil
		_ = RemovePartial(f.opts.PartialPath)
		return Result{}, err
	}
	_ = f.file.Close()
	f.file = nil
	if err := RemovePartial(f.opts.PartialPath); err != nil {
		return Result{}, err
	}
	sum := f.opts.Checksum
	if sum.IsZero() {
		sum = Checksum{Type: "sha256", Hex: fmt.Sprintf("%x", f.hash.Sum(nil))}
	}
	return Result{Size: f.done, Checksum: sum, Resumed: f.resumed}, nil
}

// openPartial opens the partial file and decides whether its bytes can be
// resumed: only when its state file names the same URL, and a validator or
// a checksum can catch a file that changed in between.
func (f *fetcher) openPartial() error {
	file, err := os.OpenFile(f.opts.PartialPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download %q: open partial file: %w", f.opts.URL, err)
	}
	f.file = file
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("download %q: %w", f.opts.URL, err)
	}
	var st partialState
	data, rerr := os.ReadFile(f.opts.PartialPath + ".json")
	usable := rerr == nil && json.Unmarshal(data, &st) == nil &&
		st.URL == f.opts.URL && fi.Size() > 0 &&
		(st.ETag != "" || st.LastModified != "" || !f.opts.Checksum.IsZero()) &&
		(st.Size < 0 || fi.Size() <= st.Size)
	if !usable {
		return f.dropPartial()
	}
	f.state = st
	f.pending = fi.Size()
	return nil
}

// dropPartial empties the partial file so the download starts from zero.
func (f *fetcher) dropPartial() error {
	f.pending = 0
	f.state = partialState{}
	_ = os.Remove(f.opts.PartialPath + ".json")
	if err := f.file.Truncate(0); err != nil {
		return fmt.Errorf("download %q: reset partial file: %w", f.opts.URL, err)
	}
	if _, err := f.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("download %q: reset partial file: %w", f.opts.URL, err)
	}
	return nil
}

func (f *fetcher) redirectClient() *http.Client {
	var c http.Client
	if f.opts.Client != nil {
		c = *f.opts.Client
	}
	inner := c.CheckRedirect
	needHTTPS := f.opts.Checksum.IsZero() && !f.opts.Insecure
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fatal(fmt.Errorf("download %q: stopped after %d redirects", f.opts.URL, maxRedirects))
		}
		if needHTTPS && req.URL.Scheme != "https" {
			return fatal(&PolicyError{URL: f.opts.URL, Reason: fmt.Sprintf(
				"refusing to follow the redirect from %q to plain HTTP %q without a checksum: pass --checksum TYPE:HEX, or --insecure to accept the risk",
				f.opts.URL, req.URL.Redacted())})
		}
		if inner != nil {
			return inner(req, via)
		}
		return nil
	}
	return &c
}

// attempt makes one request and streams its body. It returns nil when the
// whole file has been delivered.
func (f *fetcher) attempt(ctx context.Context) error {
	fromFile := f.done == 0 && f.pending > 0
	offset := f.done
	if fromFile {
		offset = f.pending
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(actx, http.MethodGet, f.opts.URL, nil)
	if err != nil {
		return fatal(fmt.Errorf("download %q: %w", f.opts.URL, err))
	}
	// Ask for the bytes as stored: a transparently decompressed body would
	// not match the checksum, nor resume at the right offset.
	req.Header.Set("Accept-Encoding", "identity")
	if f.opts.UserAgent != "" {
		req.Header.Set("User-Agent", f.opts.UserAgent)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if v := f.ifRange(); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
	stall := time.AfterFunc(f.opts.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	resp, err := f.client.Do(req)
	if err != nil {
		return f.classify(actx, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body := &stallReader{r: resp.Body, timer: stall, d: f.opts.StallTimeout}

	switch resp.StatusCode {
	case http.StatusOK:
		if err := f.startFull(resp, fromFile, body); err != nil {
			return err
		}
	case http.StatusPartialContent:
		if offset == 0 {
			return fatal(fmt.Errorf("download %q: server sent a partial response to a full request", f.opts.URL))
		}
		start, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset || (f.total >= 0 && total >= 0 && total != f.total) ||
			(fromFile && f.state.Size >= 0 && total >= 0 && total != f.state.Size) ||
			(fromFile && !sameValidator(f.state, resp.Header)) {
			if fromFile {
				if err := f.dropPartial(); err != nil {
					return fatal(err)
				}
				return errRestart
			}
			return f.changedError()
		}
		if f.total < 0 {
			f.total = total
		}
		if fromFile {
			if f.total < 0 {
				f.total = f.state.Size
			}
			if err := f.replay(); err != nil {
				return err
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if fromFile && ok && total == f.pending && (f.state.Size < 0 || total == f.state.Size) {
			// The kept bytes are already the whole file.
			f.total = total
			return f.replay()
		}
		if fromFile {
			if err := f.dropPartial(); err != nil {
				return fatal(err)
			}
			return errRestart
		}
		if ok && total == f.done {
			return nil
		}
		return fatal(&StatusError{URL: f.opts.URL, StatusCode: resp.StatusCode, Status: resp.Status})
	default:
		serr := &StatusError{URL: f.opts.URL, StatusCode: resp.StatusCode, Status: resp.Status}
		if retryableStatus(resp.StatusCode) {
			return serr
		}
		return fatal(serr)
	}

	f.begin(f.total)
	for {
		n, rerr := iox.Fill(body, f.buf)
		if n > 0 {
			// A slow sink is not a stalled connection: pause the timer.
			stall.Stop()
			if err := f.deliver(f.buf[:n], true); err != nil {
				return err
			}
			stall.Reset(f.opts.StallTimeout)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return f.classify(actx, rerr)
		}
	}
	if f.total >= 0 && f.done != f.total {
		return fmt.Errorf("download %q: connection closed after %d of %d bytes", f.opts.URL, f.done, f.total)
	}
	return nil
}

// startFull handles a 200 response: a fresh start, or a server that ignored
// the Range header.
func (f *fetcher) startFull(resp *http.Response, fromFile bool, body io.Reader) error {
	if fromFile {
		if err := f.dropPartial(); err != nil {
			return fatal(err)
		}
	}
	size := resp.ContentLength
	if f.done > 0 {
		// Reconnected within this run, but the server sends everything again:
		// skip what was already delivered, checking it is the same bytes.
		if (size >= 0 && f.total >= 0 && size != f.total) || !sameValidator(f.state, resp.Header) {
			return f.changedError()
		}
		return f.skipKnown(body)
	}
	f.total = size
	f.state = partialState{
		URL:          f.opts.URL,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Size:         size,
	}
	data, err := json.Marshal(f.state)
	if err != nil {
		return fatal(err)
	}
	if err := atomicfile.WriteFile(f.opts.PartialPath+".json", data, 0o644); err != nil {
		return fatal(fmt.Errorf("download %q: %w", f.opts.URL, err))
	}
	return nil
}

// skipKnown reads the first f.done bytes of body and compares them with the
// partial file.
func (f *fetcher) skipKnown(body io.Reader) error {
	mine := make([]byte, chunkSize)
	var pos int64
	for pos < f.done {
		n := int(min(int64(len(f.buf)), f.done-pos))
		if _, err := io.ReadFull(body, f.buf[:n]); err != nil {
			return fmt.Errorf("download %q: %w", f.opts.URL, err)
		}
		if _, err := f.file.ReadAt(mine[:n], pos); err != nil {
			return fatal(fmt.Errorf("download %q: read partial file: %w", f.opts.URL, err))
		}
		if string(mine[:n]) != string(f.buf[:n]) {
			return f.changedError()
		}
		pos += int64(n)
	}
	return nil
}

func (f *fetcher) changedError() error {
	_ = f.file.Close()
	f.file = nil
	_ = RemovePartial(f.opts.PartialPath)
	return fatal(fmt.Errorf("download %q: the file on the server changed during the download; run again to start afresh", f.opts.URL))
}

// replay feeds the bytes kept from an earlier run to the hash and the sink.
func (f *fetcher) replay() error {
	f.begin(f.total)
	if _, err := f.file.Seek(0, io.SeekStart); err != nil {
		return fatal(fmt.Errorf("download %q: read partial file: %w", f.opts.URL, err))
	}
	r := io.LimitReader(f.file, f.pending)
	for {
		n, err := io.ReadFull(r, f.buf)
		if n > 0 {
			if derr := f.deliver(f.buf[:n], false); derr != nil {
				return derr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fatal(fmt.Errorf("download %q: read partial file: %w", f.opts.URL, err))
		}
	}
	if f.done != f.pending {
		return fatal(fmt.Errorf("download %q: partial file shrank while reading it", f.opts.URL))
	}
	f.pending = 0
	f.resumed = true
	return nil
}

// deliver passes one chunk to the hash, the partial file (unless it came
// from there) and the sink.
func (f *fetcher) deliver(p []byte, toFile bool) error {
	f.hash.Write(p)
	if toFile {
		if _, err := f.file.Write(p); err != nil {
			return fatal(fmt.Errorf("download %q: write partial file: %w", f.opts.URL, err))
		}
	}
	if f.opts.Sink != nil {
		if _, err := f.opts.Sink.Write(p); err != nil {
			return fatal(err)
		}
	}
	f.done += int64(len(p))
	if f.opts.Progress != nil {
		f.opts.Progress.Add(int64(len(p)))
	}
	return nil
}

func (f *fetcher) begin(total int64) {
	if !f.started {
		f.started = true
		if f.opts.Progress != nil {
			f.opts.Progress.Start(total)
		}
	}
}

func (f *fetcher) ifRange() string {
	if etag := f.state.ETag; etag != "" && !strings.HasPrefix(etag, "W/") {
		return etag
	}
	return f.state.LastModified
}

// classify turns a transport error into a retryable or fatal one.
func (f *fetcher) classify(actx context.Context, err error) error {
	if errors.Is(context.Cause(actx), errStalled) {
		return fmt.Errorf("download %q: %w", f.opts.URL, errStalled)
	}
	var fe *fatalError
	if errors.As(err, &fe) {
		return fe
	}
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	if errors.As(err, &certErr) || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return fatal(fmt.Errorf("download %q: %w", f.opts.URL, err))
	}
	return fmt.Errorf("download %q: %w", f.opts.URL, err)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// sameValidator reports whether the response's validators agree with the
// ones recorded when the download began (an absent one agrees).
func sameValidator(st partialState, h http.Header) bool {
	if etag := h.Get("ETag"); etag != "" && st.ETag != "" && etag != st.ETag {
		return false
	}
	if lm := h.Get("Last-Modified"); lm != "" && st.LastModified != "" && lm != st.LastModified {
		return false
	}
	return true
}

// parseContentRange parses "bytes START-END/TOTAL" and "bytes */TOTAL";
// missing parts are -1, TOTAL "*" is -1.
func parseContentRange(s string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	total = -1
	if size != "*" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		total = n
	}
	if span == "*" {
		return -1, -1, total, true
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// stallReader pushes the stall timer back on every read that returns data.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}
