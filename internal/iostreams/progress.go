package iostreams

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress draws a download's progress bar on stderr when stderr is a
// terminal, and nothing otherwise. It satisfies download.Progress.
type Progress struct {
	s     *IOStreams
	label string
	bar   *progressbar.ProgressBar
}

// NewProgress returns a progress reporter labelled with what is fetched.
func (s *IOStreams) NewProgress(label string) *Progress {
	return &Progress{s: s, label: label}
}

// Start begins the bar; total is -1 when the size is unknown.
func (p *Progress) Start(total int64) {
	if !p.s.stderrTTY {
		return
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.s.ErrOut),
		progressbar.OptionSetDescription(p.label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionEnableColorCodes(p.s.color),
	)
}

// Add advances the bar by n bytes.
func (p *Progress) Add(n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// Done ends the bar.
func (p *Progress) Done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
