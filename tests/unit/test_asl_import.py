"""moto's ASL interpreter is imported without Batch's and EC2's models, and leaves the
real ``moto.batch`` to whatever imports it later."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_interpreter_loads_without_ec2_and_batch_loads_whole_after() -> None:
    # In a fresh interpreter: what is imported depends on the process's history.
    script = textwrap.dedent(
        """
        import sys
        from workflow.local import asl_import
        asl_import.install()
        assert asl_import.INTERPRETER in sys.modules
        assert "moto.ec2" not in sys.modules and "moto.batch" not in sys.modules
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        one_pass = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}'
        AmazonStateLanguageParser.parse(one_pass)
        import moto.batch
        from moto.batch.utils import JobStatus
        assert moto.batch.batch_backends["123456789012"]["us-east-1"].describe_jobs([]) == []
        assert "moto.ec2" in sys.modules
        service = sys.modules[asl_import.BATCH_INTEGRATION]
        assert service.JobStatus is JobStatus
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
