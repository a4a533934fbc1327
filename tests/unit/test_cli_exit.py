"""``vidflow`` ends without the interpreter's teardown, yet loses no output and no exit
handler, and still waits for a thread that is running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _command(body: str) -> subprocess.CompletedProcess[str]:
    """``workflow.cli.main.command`` in a fresh interpreter, ``main`` replaced by ``body``."""
    script = "import atexit, sys, threading, time\nfrom workflow.cli import main as cli\n"
    script += "def main():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    script += "\ncli.main = main\ncli.command()\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_the_status_output_and_exit_handlers_survive_the_quick_exit() -> None:
    done = _command(
        """
        atexit.register(lambda: print("handler ran", file=sys.stderr))
        sys.stdout.write("no newline yet")
        print("to stderr", file=sys.stderr, end="")
        return 7
        """
    )
    assert done.returncode == 7
    assert done.stdout == "no newline yet"
    assert done.stderr == "to stderrhandler ran\n"


def test_a_running_thread_is_waited_for() -> None:
    done = _command(
        """
        def late():
            time.sleep(0.5)
            print("thread finished")
        threading.Thread(target=late).start()
        return 3
        """
    )
    assert (done.returncode, done.stdout) == (3, "thread finished\n")


def test_a_full_or_read_only_disk_is_named_not_an_internal_error() -> None:
    # GIVEN a command stopped by this machine's disk: full, then read-only
    for code, text in (("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                import errno, sys
                from workflow.cli import events, main as cli
                def full(args):
                    raise OSError(errno.{code}, "{text}", "/data/out/seg_00003.ts")
                events.print_events = full
                sys.exit(cli.main(["events"]))
            """)],
            capture_output=True, text=True,
        )  # fmt: skip
        # WHEN it ends, THEN it says so in one line, as the user's to fix (exit 1, not 3)
        assert (done.returncode, done.stderr) == (1, f"error: {text}: /data/out/seg_00003.ts\n")


def test_a_closed_error_output_is_dev_null_before_any_socket_takes_it() -> None:
    # GIVEN vidflow started with its error output closed (`2>&-`)
    script = "import os, workflow.cli; print(os.readlink('/proc/self/fd/2'))"
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", sys.executable, "-c", script],
        capture_output=True, text=True,
    )  # fmt: skip
    # THEN once its package is imported (the X-Ray SDK opens a UDP socket as it is),
    # fd 2 is /dev/null, where workers and ffmpeg may write their errors, not a socket
    assert done.stdout.strip() == os.devnull
