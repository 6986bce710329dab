package iostreams

import (
	"fmt"
	"time"
)

// Step prints one line per stage of a longer job (such as `up`) with the
// stage's duration, on ErrOut:
//
//	==> Booting VM ... done (12.4s)
type Step struct {
	s     *IOStreams
	name  string
	start time.Time
	now   func() time.Time
}

// StartStep announces a stage. Call Done or Fail on the result.
func (s *IOStreams) StartStep(name string) *Step {
	st := &Step{s: s, name: name, now: time.Now}
	st.start = st.now()
	if s.stderrTTY {
		fmt.Fprintf(s.ErrOut, "==> %s ...", name)
	}
	return st
}

// Done ends the stage successfully; detail (may be empty) follows the
// duration.
func (st *Step) Done(detail string) { st.end("done", detail) }

// Fail ends the stage unsuccessfully.
func (st *Step) Fail() { st.end("failed", "") }

func (st *Step) end(word, detail string) {
	d := st.now().Sub(st.start).Round(100 * time.Millisecond)
	if detail != "" {
		detail = ": " + detail
	}
	if st.s.stderrTTY {
		fmt.Fprintf(st.s.ErrOut, " %s (%s)%s\n", word, d, detail)
		return
	}
	fmt.Fprintf(st.s.ErrOut, "==> %s ... %s (%s)%s\n", st.name, word, d, detail)
}
