package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// payload returns n deterministic pseudo-random bytes and their checksum.
func payload(n int, seed uint64) ([]byte, Checksum) {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(b)
	return b, Checksum{Type: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// server serves content with Range support (net/http's ServeContent) and
// records each request's Range header. While cuts > 0, a request is answered
// with a full-length header but only cutAt bytes of body, then the
// connection is closed.
type server struct {
	t        *testing.T
	mu       sync.Mutex
	content  []byte
	etag     string
	ranges   []string
	ifRanges []string
	cuts     atomic.Int32
	cutAt    int
	noRange  bool // ignore Range: always 200 with everything
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.ifRanges = append(s.ifRanges, r.Header.Get("If-Range"))
	content, etag := s.content, s.etag
	s.mu.Unlock()
	if s.cuts.Add(-1) >= 0 {
		start := 0
		if !s.noRange {
			fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		status := "200 OK"
		hdr := fmt.Sprintf("Content-Length: %d\r\n", len(content))
		if start > 0 {
			status = "206 Partial Content"
			hdr = fmt.Sprintf("Content-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\n", len(content)-start, start, len(content)-1, len(content))
		}
		fmt.Fprintf(buf, "HTTP/1.1 %s\r\n%sETag: %s\r\n\r\n", status, hdr, etag)
		end := min(start+s.cutAt, len(content))
		buf.Write(content[start:end])
		buf.Flush()
		conn.Close()
		return
	}
	w.Header().Set("ETag", etag)
	if s.noRange {
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.Write(content)
		return
	}
	http.ServeContent(w, r, "file.box", time.Unix(1700000000, 0), bytes.NewReader(content))
}

func (s *server) seen() (ranges, ifRanges []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...), append([]string(nil), s.ifRanges...)
}

type progress struct {
	mu     sync.Mutex
	total  int64
	added  int64
	starts int
	dones  int
}

func (p *progress) Start(total int64) { p.mu.Lock(); p.total = total; p.starts++; p.mu.Unlock() }
func (p *progress) Add(n int64)       { p.mu.Lock(); p.added += n; p.mu.Unlock() }
func (p *progress) Done()             { p.mu.Lock(); p.dones++; p.mu.Unlock() }

func opts(t *testing.T, url string, sum Checksum, sink io.Writer) Options {
	return Options{
		URL:          url,
		Checksum:     sum,
		PartialPath:  filepath.Join(t.TempDir(), "dl.partial"),
		Sink:         sink,
		RetryDelay:   time.Millisecond,
		StallTimeout: 5 * time.Second,
	}
}

func assertNoPartial(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + ".json"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (err %v)", p, err)
		}
	}
}

func TestFetchVerifiesAndStreams(t *testing.T) {
	content, sum := payload(3*chunkSize+123, 1)
	srv := &server{t: t, content: content, etag: `"v1"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var sink bytes.Buffer
	prog := &progress{}
	o := opts(t, ts.URL+"/x.box", sum, &sink)
	o.Progress = prog
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("sink got %d bytes, want the %d bytes served", sink.Len(), len(content))
	}
	if res.Size != int64(len(content)) || res.Checksum != sum || res.Resumed {
		t.Fatalf("result = %+v", res)
	}
	if prog.starts != 1 || prog.dones != 1 || prog.total != int64(len(content)) || prog.added != int64(len(content)) {
		t.Fatalf("progress = %+v", prog)
	}
	assertNoPartial(t, o.PartialPath)
}

func TestFetchChecksumMismatchKeepsNothing(t *testing.T) {
	content, _ := payload(100000, 2)
	_, other := payload(100000, 3)
	ts := httptest.NewServer(&server{t: t, content: content, etag: `"v1"`})
	defer ts.Close()
	o := opts(t, ts.URL+"/x.box", other, io.Discard)
	_, err := Fetch(context.Background(), o)
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a checksum error", err)
	}
	if ce.Want != other || ce.Got.Hex == other.Hex {
		t.Fatalf("checksum error = %+v", ce)
	}
	assertNoPartial(t, o.PartialPath)
}

func TestFetchReconnectsWithinOneRun(t *testing.T) {
	content, sum := payload(3*chunkSize, 4)
	srv := &server{t: t, content: content, etag: `"v1"`, cutAt: chunkSize + 5000}
	srv.cuts.Store(2) // first request and first resume both cut
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var sink bytes.Buffer
	var warnings []string
	o := opts(t, ts.URL+"/x.box", sum, &sink)
	o.Warn = func(s string) { warnings = append(warnings, s) }
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("sink got %d bytes, want %d identical", sink.Len(), len(content))
	}
	ranges, ifRanges := srv.seen()
	want := []string{"", fmt.Sprintf("bytes=%d-", srv.cutAt), fmt.Sprintf("bytes=%d-", 2*srv.cutAt)}
	if strings.Join(ranges, "|") != strings.Join(want, "|") {
		t.Fatalf("Range headers = %q, want %q", ranges, want)
	}
	if ifRanges[1] != `"v1"` {
		t.Fatalf("If-Range = %q, want the ETag", ifRanges[1])
	}
	if res.Resumed || len(warnings) != 2 {
		t.Fatalf("resumed=%v warnings=%q", res.Resumed, warnings)
	}
	assertNoPartial(t, o.PartialPath)
}

func TestFetchResumesInNextRun(t *testing.T) {
	content, sum := payload(3*chunkSize, 5)
	srv := &server{t: t, content: content, etag: `"v1"`, cutAt: chunkSize + 4321}
	srv.cuts.Store(1)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var first bytes.Buffer
	o := opts(t, ts.URL+"/x.box", sum, &first)
	o.MaxAttempts = 1
	if _, err := Fetch(context.Background(), o); err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("cut download: err = %v, want a resumable failure", err)
	}
	if fi, err := os.Stat(o.PartialPath); err != nil || fi.Size() != int64(srv.cutAt) {
		t.Fatalf("partial file after the cut: %v, %v; want %d bytes", fi, err, srv.cutAt)
	}

	var second bytes.Buffer
	o.Sink = &second
	prog := &progress{}
	o.Progress = prog
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !bytes.Equal(second.Bytes(), content) {
		t.Fatalf("resumed=%v, second sink %d bytes (want all %d, once)", res.Resumed, second.Len(), len(content))
	}
	ranges, ifRanges := srv.seen()
	if len(ranges) != 2 || ranges[1] != fmt.Sprintf("bytes=%d-", srv.cutAt) || ifRanges[1] != `"v1"` {
		t.Fatalf("requests: Range %q If-Range %q", ranges, ifRanges)
	}
	if prog.added != int64(len(content)) || prog.total != int64(len(content)) {
		t.Fatalf("progress = %+v", prog)
	}
	assertNoPartial(t, o.PartialPath)
}

func TestFetchRestartsWhenServerIgnoresRange(t *testing.T) {
	content, sum := payload(2*chunkSize+99, 6)
	srv := &server{t: t, content: content, etag: `"v1"`, cutAt: chunkSize / 2, noRange: true}
	srv.cuts.Store(1)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	// Next run: kept bytes are dropped and the sink sees the file once.
	var sink bytes.Buffer
	o := opts(t, ts.URL+"/x.box", sum, &sink)
	o.MaxAttempts = 1
	if _, err := Fetch(context.Background(), o); err == nil {
		t.Fatal("cut download succeeded")
	}
	sink.Reset()
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("resumed=%v sink=%d bytes", res.Resumed, sink.Len())
	}

	// Same run: the repeated prefix is skipped, not delivered twice.
	srv.cuts.Store(1)
	sink.Reset()
	o = opts(t, ts.URL+"/x.box", sum, &sink)
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("sink got %d bytes, want %d identical", sink.Len(), len(content))
	}
}

func TestFetchDoesNotSpliceAChangedFile(t *testing.T) {
	old, _ := payload(2*chunkSize, 7)
	srv := &server{t: t, content: old, etag: `"v1"`, cutAt: chunkSize}
	srv.cuts.Store(1)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	o := opts(t, ts.URL+"/x.box", Checksum{}, io.Discard)
	o.Insecure = true
	o.MaxAttempts = 1
	if _, err := Fetch(context.Background(), o); err == nil {
		t.Fatal("cut download succeeded")
	}
	// The file is replaced on the server: If-Range fails, the server sends
	// the new file whole, and it must not be glued onto the old bytes.
	fresh, sum := payload(2*chunkSize, 8)
	srv.mu.Lock()
	srv.content, srv.etag = fresh, `"v2"`
	srv.mu.Unlock()
	var sink bytes.Buffer
	o.Sink = &sink
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Checksum != sum || !bytes.Equal(sink.Bytes(), fresh) {
		t.Fatalf("result %+v, sink %d bytes", res, sink.Len())
	}
}

func TestFetchKeptFileAlreadyComplete(t *testing.T) {
	content, sum := payload(chunkSize+10, 9)
	srv := &server{t: t, content: content, etag: `"v1"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	o := opts(t, ts.URL+"/x.box", sum, nil)
	// As if a previous run received everything but stopped before finishing.
	if err := os.WriteFile(o.PartialPath, content, 0o644); err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf(`{"url":%q,"etag":"\"v1\"","size":%d}`, o.URL, len(content))
	if err := os.WriteFile(o.PartialPath+".json", []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	var sink bytes.Buffer
	o.Sink = &sink
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("resumed=%v sink=%d", res.Resumed, sink.Len())
	}
	if ranges, _ := srv.seen(); len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=%d-", len(content)) {
		t.Fatalf("ranges = %q", ranges)
	}
}

func TestFetchIgnoresKeptBytesOfAnotherURL(t *testing.T) {
	content, sum := payload(5000, 10)
	ts := httptest.NewServer(&server{t: t, content: content, etag: `"v1"`})
	defer ts.Close()
	o := opts(t, ts.URL+"/x.box", sum, nil)
	if err := os.WriteFile(o.PartialPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.PartialPath+".json", []byte(`{"url":"http://elsewhere/y.box","etag":"\"v1\"","size":5000}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var sink bytes.Buffer
	o.Sink = &sink
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatal("kept bytes of another URL were used")
	}
}

func TestFetchStatusErrors(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/missing.box":
			http.NotFound(w, r)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer ts.Close()
	sum := Checksum{Type: "md5", Hex: "0cc175b9c0f1b6a831c399e269772661"}

	o := opts(t, ts.URL+"/missing.box", sum, nil)
	_, err := Fetch(context.Background(), o)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 {
		t.Fatalf("404: err = %v", err)
	}
	if !strings.Contains(err.Error(), ts.URL+"/missing.box") || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("404 message = %q", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("404 was retried: %d requests", hits.Load())
	}
	assertNoPartial(t, o.PartialPath)

	hits.Store(0)
	o = opts(t, ts.URL+"/broken.box", sum, nil)
	o.MaxAttempts = 3
	_, err = Fetch(context.Background(), o)
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "500 Internal Server Error") {
		t.Fatalf("500: err = %v", err)
	}
	if hits.Load() != 3 {
		t.Fatalf("500 made %d requests, want 3 attempts", hits.Load())
	}
}

func TestFetchFollowsRedirects(t *testing.T) {
	content, sum := payload(4096, 11)
	mux := http.NewServeMux()
	mux.Handle("/real.box", &server{t: t, content: content, etag: `"v1"`})
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/real.box", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	ts := httptest.NewServer(mux)
	defer ts.Close()

	var sink bytes.Buffer
	if _, err := Fetch(context.Background(), opts(t, ts.URL+"/a", sum, &sink)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatal("redirected content differs")
	}
	_, err := Fetch(context.Background(), opts(t, ts.URL+"/loop", sum, nil))
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("redirect loop: err = %v", err)
	}
}

func TestFetchPolicy(t *testing.T) {
	content, _ := payload(2048, 12)
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(content)
	}))
	defer plain.Close()

	// Plain HTTP and no checksum: refused before any request.
	o := opts(t, plain.URL+"/x.box", Checksum{}, nil)
	_, err := Fetch(context.Background(), o)
	var pe *PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "--insecure") || hits.Load() != 0 {
		t.Fatalf("err = %v, requests = %d", err, hits.Load())
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("policy error spans lines: %q", err)
	}

	// --insecure: allowed, with a warning.
	var warnings []string
	o.Insecure = true
	o.Warn = func(s string) { warnings = append(warnings, s) }
	if _, err := Fetch(context.Background(), o); err != nil || len(warnings) != 1 {
		t.Fatalf("insecure: err = %v warnings = %q", err, warnings)
	}

	// HTTPS and no checksum: allowed with a warning; the computed sha256
	// is reported.
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/x.box", http.StatusFound)
		default:
			w.Write(content)
		}
	}))
	defer tls.Close()
	warnings = nil
	o = opts(t, tls.URL+"/x.box", Checksum{}, nil)
	o.Client = tls.Client()
	o.Warn = func(s string) { warnings = append(warnings, s) }
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(content)
	if res.Checksum.Hex != hex.EncodeToString(want[:]) {
		t.Fatalf("computed checksum = %v", res.Checksum)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no checksum") || !strings.Contains(warnings[0], tls.URL) {
		t.Fatalf("warnings = %q", warnings)
	}

	// HTTPS redirecting to plain HTTP without a checksum: refused.
	hits.Store(0)
	o = opts(t, tls.URL+"/to-http", Checksum{}, nil)
	o.Client = tls.Client()
	_, err = Fetch(context.Background(), o)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "redirect") || hits.Load() != 0 {
		t.Fatalf("downgrade redirect: err = %v requests = %d", err, hits.Load())
	}
}

func TestFetchStalledConnectionIsRetried(t *testing.T) {
	content, sum := payload(chunkSize+500, 13)
	var first atomic.Bool
	var ranges []string
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		w.Header().Set("ETag", `"s"`)
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			w.Write(content[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stall until the client gives up
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(content))
	}))
	defer ts.Close()
	var sink bytes.Buffer
	o := opts(t, ts.URL+"/x.box", sum, &sink)
	o.StallTimeout = 200 * time.Millisecond
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatal("content differs")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || ranges[1] != "bytes=1000-" {
		t.Fatalf("ranges = %q", ranges)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestFetchCancelledKeepsPartial(t *testing.T) {
	content, sum := payload(chunkSize*2, 14)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"c"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.Write(content[:chunkSize+1])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	// The sink plays the user pressing Ctrl-C once the first chunk is in.
	o := opts(t, ts.URL+"/x.box", sum, writerFunc(func(p []byte) (int, error) {
		cancel()
		return len(p), nil
	}))
	_, err := Fetch(ctx, o)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("err = %v, want cancelled", err)
	}
	if _, err := os.Stat(o.PartialPath + ".json"); err != nil {
		t.Fatalf("state file gone after cancel: %v", err)
	}
	if fi, err := os.Stat(o.PartialPath); err != nil || fi.Size() < chunkSize {
		t.Fatalf("partial file after cancel: %v %v", fi, err)
	}
}

type failingSink struct{ after int }

func (f *failingSink) Write(p []byte) (int, error) {
	f.after -= len(p)
	if f.after < 0 {
		return 0, errors.New("extract: disk full")
	}
	return len(p), nil
}

func TestFetchSinkErrorStops(t *testing.T) {
	content, sum := payload(3*chunkSize, 15)
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(content))
	}))
	defer ts.Close()
	_, err := Fetch(context.Background(), opts(t, ts.URL+"/x.box", sum, &failingSink{after: chunkSize}))
	if err == nil || err.Error() != "extract: disk full" || hits.Load() != 1 {
		t.Fatalf("err = %v, requests = %d", err, hits.Load())
	}
}

func TestFetchNeedsPartialPath(t *testing.T) {
	_, err := Fetch(context.Background(), Options{URL: "https://h/x", Checksum: Checksum{Type: "md5", Hex: strings.Repeat("0", 32)}})
	if err == nil {
		t.Fatal("no error without a partial path")
	}
}

func TestFetchSlowSinkIsNotAStall(t *testing.T) {
	content, sum := payload(3*chunkSize, 16)
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(content))
	}))
	defer ts.Close()
	var sink bytes.Buffer
	o := opts(t, ts.URL+"/x.box", sum, writerFunc(func(p []byte) (int, error) {
		time.Sleep(150 * time.Millisecond) // each chunk takes longer than the stall timeout
		return sink.Write(p)
	}))
	o.StallTimeout = 100 * time.Millisecond
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("requests = %d, sink %d bytes", hits.Load(), sink.Len())
	}
}
