// Package crashtest kills a test's child process with SIGKILL in the
// middle of its writes, for the crash tests of the packages that write
// through the store: the test re-executes its own binary as a child that
// writes to a store file and prints a line starting with "step" after each
// write it made durable; the parent kills it after a number of steps and
// then reopens the file to check what survived. It is used by tests only.
package crashtest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Child reports whether this process is the child that Kill started with
// env, and returns the store path the child must write to.
func Child(env string) (path string, ok bool) {
	return os.Getenv(env + "_PATH"), os.Getenv(env) == "1"
}

// Kill runs test (a test function name) of the current test binary as a
// child, with env set to 1 and env_PATH to path, kills it with SIGKILL
// once it has printed after "step" lines, and fails t unless SIGKILL ended
// it. It returns how many steps the child printed.
func Kill(t testing.TB, test, env, path string, after int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1", env+"_PATH="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "step") {
			if steps++; steps == after {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatalf("kill child: %v", err)
				}
			}
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL after %d steps: %v\n%s", steps, err, stderr.String())
	}
	return steps
}
