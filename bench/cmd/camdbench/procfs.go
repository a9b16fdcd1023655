package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat. It is read from the auxiliary vector (AT_CLKTCK) since
// sysconf needs cgo; every Linux in practice says 100.
var clockTicks = readClockTicks()

func readClockTicks() float64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if t, ok := parseAuxvClockTicks(b); ok {
		return float64(t)
	}
	return 100
}

// parseAuxvClockTicks finds AT_CLKTCK (17) in a 64-bit little-endian
// auxiliary vector.
func parseAuxvClockTicks(b []byte) (uint64, bool) {
	const atNull, atClkTck = 0, 17
	for len(b) >= 16 {
		k := binary.LittleEndian.Uint64(b[0:8])
		v := binary.LittleEndian.Uint64(b[8:16])
		b = b[16:]
		switch k {
		case atNull:
			return 0, false
		case atClkTck:
			if v == 0 {
				return 0, false
			}
			return v, true
		}
	}
	return 0, false
}

// procCPUTicks returns utime+stime of a process, in clock ticks.
func procCPUTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU parses utime (field 14) and stime (field 15) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted from the last
// ')'.
func parseStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')'")
	}
	// After ") " come field 3 (state), 4, 5, …: utime is field 14, the
	// 12th after the command.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command, want at least 13", len(f))
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return ut + st, nil
}

// procStatus holds the fields of /proc/PID/status the bench uses.
type procStatus struct {
	RSSBytes uint64
	Threads  int
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(b)
}

// parseProcStatus reads VmRSS (kB) and Threads from /proc/PID/status text.
func parseProcStatus(b []byte) (procStatus, error) {
	var ps procStatus
	var haveRSS bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			n, err := parseKB(v)
			if err != nil {
				return ps, fmt.Errorf("VmRSS: %w", err)
			}
			ps.RSSBytes, haveRSS = n, true
		case "Threads":
			n, err := strconv.Atoi(v)
			if err != nil {
				return ps, fmt.Errorf("threads: %w", err)
			}
			ps.Threads = n
		}
	}
	if !haveRSS {
		return ps, errors.New("status: no VmRSS (a zombie?)")
	}
	return ps, nil
}

// parseKB parses "1234 kB" into bytes.
func parseKB(v string) (uint64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, err
	}
	switch strings.TrimSpace(unit) {
	case "kB", "":
		return n * 1024, nil
	}
	return 0, fmt.Errorf("unknown unit %q", unit)
}

// readPSS returns the proportional set size from /proc/PID/smaps_rollup:
// shared pages (ffmpeg's libraries) divided among the processes mapping
// them.
func readPSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	return parseKBField(b, "Pss")
}

// parseKBField returns field name ("Pss") of a "Name:   123 kB" listing.
func parseKBField(b []byte, name string) (uint64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return parseKB(v)
		}
	}
	return 0, fmt.Errorf("no %s field", name)
}

// countFDs counts the entries of /proc/PID/fd.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// machineCPU is the aggregate "cpu" line of /proc/stat, in clock ticks.
type machineCPU struct {
	Total, Idle uint64
	// IRQ is hard and soft interrupt time: mostly loopback networking,
	// which the kernel does not charge to any process.
	IRQ uint64
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	return parseMachineCPU(b)
}

// parseMachineCPU parses the first line of /proc/stat: "cpu user nice
// system idle iowait irq softirq steal guest guest_nice". Idle counts idle
// and iowait; guest time is already inside user, so it is not added again.
func parseMachineCPU(b []byte) (machineCPU, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var m machineCPU
	for i, s := range f[1:] {
		if i >= 8 { // guest, guest_nice
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		m.Total += n
		switch i {
		case 3, 4:
			m.Idle += n
		case 5, 6:
			m.IRQ += n
		}
	}
	return m, nil
}

// irqPercent is the interrupt time between a and b in percent of one core.
func irqPercent(a, b machineCPU, cores int) float64 {
	dt := float64(b.Total - a.Total)
	if dt <= 0 {
		return 0
	}
	return float64(b.IRQ-a.IRQ) / dt * 100 * float64(cores)
}

// busyPercent is the machine's CPU use between a and b in percent of one
// core (so up to 100 × cores).
func busyPercent(a, b machineCPU, cores int) float64 {
	dt := float64(b.Total - a.Total)
	if dt <= 0 {
		return 0
	}
	return float64((b.Total-a.Total)-(b.Idle-a.Idle)) / dt * 100 * float64(cores)
}
