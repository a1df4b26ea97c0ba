package sfubench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/cmd/internal/procstat"
)

// UDPCounters returns the host's Udp counters from /proc/net/snmp (InDatagrams, RcvbufErrors,
// SndbufErrors, ...), by name.
func UDPCounters() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return nil, err
	}
	return parseSNMP(string(b), "Udp:"), nil
}

func parseSNMP(text, prefix string) map[string]uint64 {
	var names []string
	out := map[string]uint64{}
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, prefix))
		if names == nil {
			names = f
			continue
		}
		for i, v := range f {
			if i < len(names) {
				n, _ := strconv.ParseUint(v, 10, 64)
				out[names[i]] = n
			}
		}
		break
	}
	return out
}

// Process is a server under test running as a child process (see Serve). Close stops it.
type Process struct {
	URL string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error // of Wait, valid after done
	once  sync.Once
}

// StartProcess starts cmd (a program that runs Serve and exits when its standard input
// closes, like "sfubench serve"), waits up to 30 s for its ready line and returns it. Its
// standard error goes to cmd.Stderr as given. The caller must Close it.
func StartProcess(ctx context.Context, cmd *exec.Cmd) (*Process, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start: %w", ErrServer, err)
	}
	p := &Process{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if !sent && strings.HasPrefix(sc.Text(), ReadyPrefix) {
				lines <- strings.TrimPrefix(sc.Text(), ReadyPrefix)
				sent = true
			}
		}
		p.err = cmd.Wait() // after stdout is drained, as exec requires
		close(p.done)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case p.URL = <-lines:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%w: exited before ready: %v", ErrServer, p.err)
	case <-t.C:
		_ = p.Close()
		return nil, fmt.Errorf("%w: no ready line within 30s", ErrServer)
	case <-ctx.Done():
		_ = p.Close()
		return nil, ctx.Err()
	}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// CPU returns the process's user+system CPU time so far.
func (p *Process) CPU() (time.Duration, error) { return procstat.CPU(p.Pid()) }

// Close closes the process's standard input (its signal to stop), kills it if it has not
// exited 10 s later, and waits for it. Idempotent.
func (p *Process) Close() error {
	p.once.Do(func() {
		_ = p.stdin.Close()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}
