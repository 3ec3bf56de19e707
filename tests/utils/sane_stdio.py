# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put the shared standard streams back into blocking mode, and say which were not.

O_NONBLOCK is a flag of the open file description, which every process that inherited the descriptor
shares: one command that sets it on its inherited stdin, stdout or stderr (QEMU's ``-serial stdio``
does, and does not undo it when it is killed) leaves it set for every later command of the same shell,
make or CI job, and Ansible then refuses to start ("Ansible requires blocking IO on
stdin/stdout/stderr"). `make test` and vagrant/test.sh call this before each tier and each step.

Usage: sane_stdio.py [WHEN]   WHEN names the moment in the report, for example "before step: box".
Exit status 0 whether or not anything was reset; a stream that is closed is left alone.
"""

from __future__ import annotations

import os
import sys

STREAMS = ((0, "stdin"), (1, "stdout"), (2, "stderr"))


def reset_blocking() -> list[str]:
    """Clear O_NONBLOCK on fds 0-2; return the names of the streams that had it set."""
    reset = []
    for fd, name in STREAMS:
        try:
            if not os.get_blocking(fd):
                os.set_blocking(fd, True)
                reset.append(name)
        except OSError:  # closed: nothing to reset
            continue
    return reset


def main(argv: list[str]) -> int:
    reset = reset_blocking()
    if reset:
        when = f" ({argv[1]})" if len(argv) > 1 else ""
        # stderr may be the stream that was non-blocking: it is blocking again now.
        sys.stderr.write(
            f"sane_stdio: {', '.join(reset)} had been left non-blocking by an earlier command; "
            f"set back to blocking{when}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
