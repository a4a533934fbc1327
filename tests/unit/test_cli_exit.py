"""``vidflow`` ends without the interpreter's teardown, yet loses no output and no exit
handler, and still waits for a thread that is running."""

from __future__ import annotations

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
