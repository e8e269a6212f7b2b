package relayproc

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// StatusKB reads a kB field (VmRSS, VmHWM) of /proc/PID/status; pid 0 is
// this process.
func StatusKB(pid int, field string) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			if fs := strings.Fields(rest); len(fs) > 0 {
				return strconv.ParseInt(fs[0], 10, 64)
			}
			break
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}

// Goroutines reads the total of the goroutine profile a relay serves at
// metricsURL (moq-relay --metrics-addr with --pprof).
func Goroutines(ctx context.Context, client *http.Client, metricsURL string) (int, error) {
	u := strings.TrimSuffix(metricsURL, "/") + "/debug/pprof/goroutine?debug=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s (is the relay run with --pprof?)", u, resp.Status)
	}
	// "goroutine profile: total 123"
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if i := strings.LastIndex(line, "total "); i >= 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(line[i+len("total "):])); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("GET %s: no goroutine total in %q", u, line)
}
