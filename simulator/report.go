package simulator

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Seed    uint64        `json:"seed"`
	// Checked says a checker watched delivery, so Delivered, Lost,
	// Duplicated and the delivery latency are measured.
	Checked  bool            `json:"checked"`
	Profiles []ProfileReport `json:"profiles"`
	Commands CommandReport   `json:"commands"`
	// Up and Down count what the impairment did to the devices' traffic.
	Up   ImpairStats `json:"impairment_up"`
	Down ImpairStats `json:"impairment_down"`
	// Failures lists each broken guarantee: a QoS 1 message lost, a QoS 2
	// message lost or duplicated.
	Failures []string `json:"failures"`
}

// ProfileReport are one profile's figures.
type ProfileReport struct {
	Profile Profile `json:"profile"`
	Devices int     `json:"devices"`
	// Sent counts publish attempts; Acknowledged those the gateway took
	// (PUBACK or PUBCOMP at QoS 1 and 2, sent at QoS 0 and -1); Errors
	// the failed attempts, connects, sleeps and wakes.
	Sent         uint64 `json:"sent"`
	Acknowledged uint64 `json:"acknowledged"`
	Errors       uint64 `json:"errors"`
	// Delivered counts distinct messages the checker saw, Lost those
	// acknowledged that it never saw, Duplicated the extra copies.
	Delivered  uint64 `json:"delivered"`
	Lost       uint64 `json:"lost"`
	Duplicated uint64 `json:"duplicated"`
	// Received counts the commands the devices got; Rejected the bulb
	// commands refused as invalid.
	Received uint64 `json:"received"`
	Rejected uint64 `json:"rejected"`
	// Latency is from send to the checker when Checked, otherwise from
	// send to acknowledgement at QoS 1 and 2 (LatencyKind says which).
	Latency     Latency `json:"latency"`
	LatencyKind string  `json:"latency_kind"`
}

// CommandReport counts the commander's messages.
type CommandReport struct {
	Sent         uint64 `json:"sent"`
	Acknowledged uint64 `json:"acknowledged"`
	Errors       uint64 `json:"errors"`
}

// OK reports whether every guarantee held.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

func (s *Sim) report(elapsed time.Duration, checked bool, lk linker) *Report {
	r := &Report{Elapsed: elapsed, Seed: s.f.Seed, Checked: checked, Failures: []string{}}
	r.Up, r.Down = lk.stats()
	for _, p := range Profiles {
		st := s.stats[p]
		if st.devices == 0 {
			continue
		}
		pr := ProfileReport{
			Profile:      p,
			Devices:      st.devices,
			Sent:         st.sent.Load(),
			Acknowledged: st.acked.Load(),
			Errors:       st.errors.Load(),
			Delivered:    st.delivered.Load(),
			Lost:         st.lost.Load(),
			Duplicated:   st.duplicated.Load(),
			Received:     st.received.Load(),
			Rejected:     st.rejected.Load(),
			Latency:      st.ackLatency.Summary(),
			LatencyKind:  "acknowledgement",
		}
		if checked {
			pr.Latency, pr.LatencyKind = st.deliveryLatency.Summary(), "delivery"
		}
		st.impairUpMu.Lock()
		r.Up, r.Down = r.Up.Add(st.impairUp), r.Down.Add(st.impairDown)
		st.impairUpMu.Unlock()
		if n := st.lostQoS1.Load(); n > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: QoS 1 lost %d acknowledged messages", p, n))
		}
		if n := st.lostQoS2.Load(); n > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: QoS 2 lost %d acknowledged messages", p, n))
		}
		if n := st.dupQoS2.Load(); n > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: QoS 2 delivered %d duplicates", p, n))
		}
		r.Profiles = append(r.Profiles, pr)
	}
	r.Commands = CommandReport{Sent: s.commands.sent.Load(), Acknowledged: s.commands.acked.Load(), Errors: s.commands.errors.Load()}
	return r
}

// WriteText writes the report as a table.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "run: %v, seed %d\n", r.Elapsed.Round(time.Millisecond), r.Seed)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\tdevices\tsent\tacked\terrors\tdelivered\tlost\tduplicated\treceived\trejected\tp50\tp90\tp99\tmax\t")
	for _, p := range r.Profiles {
		dl, lo, du := "-", "-", "-"
		if r.Checked {
			dl, lo, du = fmt.Sprint(p.Delivered), fmt.Sprint(p.Lost), fmt.Sprint(p.Duplicated)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n",
			p.Profile, p.Devices, p.Sent, p.Acknowledged, p.Errors, dl, lo, du, p.Received, p.Rejected,
			ms(p.Latency.P50), ms(p.Latency.P90), ms(p.Latency.P99), ms(p.Latency.Max))
	}
	tw.Flush()
	kind := "acknowledgement"
	if r.Checked {
		kind = "delivery"
	}
	fmt.Fprintf(&b, "latency: %s\n", kind)
	if r.Commands.Sent > 0 {
		fmt.Fprintf(&b, "commands: %d sent, %d acknowledged, %d errors\n", r.Commands.Sent, r.Commands.Acknowledged, r.Commands.Errors)
	}
	if r.Up.Datagrams+r.Down.Datagrams > 0 && (r.Up != ImpairStats{Datagrams: r.Up.Datagrams} || r.Down != ImpairStats{Datagrams: r.Down.Datagrams}) {
		for _, d := range []struct {
			name string
			s    ImpairStats
		}{{"up", r.Up}, {"down", r.Down}} {
			fmt.Fprintf(&b, "impairment %s: %d datagrams, %d dropped, %d duplicated, %d reordered, %d overflow\n",
				d.name, d.s.Datagrams, d.s.Dropped, d.s.Duplicated, d.s.Reordered, d.s.Overflow)
		}
	}
	switch {
	case !r.Checked:
		b.WriteString("guarantees: not checked (no subscriber)\n")
	case r.OK():
		b.WriteString("guarantees: held (QoS 1 lost nothing, QoS 2 lost and duplicated nothing)\n")
	default:
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "FAILED: %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
