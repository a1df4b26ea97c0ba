// Package procstat reads a process's CPU time from Linux's /proc, for the load tools in cmd/
// (hookbench, loadtest, sfubench), which measure the server they load.
package procstat

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// CPU returns the user+system CPU time process pid has used so far, from /proc/<pid>/stat
// (10 ms resolution).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseCPU(string(b))
}

// ParseCPU extracts utime+stime from the text of /proc/<pid>/stat. The command name (field 2)
// may contain spaces and parentheses, so fields are counted after the last ')'.
func ParseCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("procstat: malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("procstat: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("procstat: malformed /proc stat times")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
