#!/usr/bin/python3
"""Runs a command on a real pseudo-terminal, as a person at a terminal
would, for the tests of `rollguard rollback`'s prompt.

    pty_run.py ANSWER [INTERRUPT_AFTER] -- COMMAND [ARG...]

The command's stdin, stdout and stderr are the terminal. When its output
shows the prompt `Proceed with rollback? (yes/no) `, ANSWER and a newline
are typed (unless ANSWER is `-`, when nothing is ever typed). When its
output shows INTERRUPT_AFTER, Ctrl-C is typed (the terminal sends SIGINT,
as it does for a person). Everything
the command wrote is copied to stdout; the exit code is the command's
(128 + the signal if a signal ended it, 124 when it ran over 60 s).
"""

import os
import pty
import select
import sys
import time

PROMPT = b"Proceed with rollback? (yes/no) "
LIMIT = 60.0


def main():
    if "--" not in sys.argv[2:4] or len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    answer = sys.argv[1]
    split = sys.argv.index("--", 2)
    interrupt = sys.argv[2].encode() if split == 3 else None
    argv = sys.argv[split + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    seen = b""
    answered = answer == "-"
    deadline = time.monotonic() + LIMIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(seen)
            sys.stdout.write("\npty_run.py: the command ran over 60 s\n")
            return 124
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break  # EIO: the command closed the terminal (it ended)
        if not chunk:
            break
        seen += chunk
        if not answered and PROMPT in seen:
            os.write(fd, answer.encode() + b"\n")
            answered = True
        if interrupt is not None and interrupt in seen:
            os.write(fd, b"\x03")
            interrupt = None
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(seen)
    sys.stdout.flush()
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
