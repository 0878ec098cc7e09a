"""Submit a file to Cesar, poll the job, print its transcript: with a client generated from openapi.yaml.

    openapi-python-client generate --path openapi.yaml --meta none --output-path cesar_client
    python examples/python/transcribe.py http://127.0.0.1:8000 meeting.mp3 [model] [format]

The generated package `cesar_client` must be importable (run from the folder it was generated in, or set
PYTHONPATH). Exits 1 when the job fails.
"""

import sys
import time
from pathlib import Path

from cesar_client import Client
from cesar_client.api.jobs import create_job, get_job, get_job_result
from cesar_client.models import Job, JobStatus, JobSubmission, Problem, ResultFormat
from cesar_client.types import UNSET, File


def main() -> int:
    server, audio = sys.argv[1], Path(sys.argv[2])
    model = sys.argv[3] if len(sys.argv) > 3 else UNSET
    result_format = ResultFormat(sys.argv[4]) if len(sys.argv) > 4 else ResultFormat.TXT
    client = Client(base_url=server, timeout=60)

    with audio.open("rb") as payload:
        submission = JobSubmission(file=File(payload=payload, file_name=audio.name), model=model)
        job = create_job.sync(client=client, body=submission)
    if not isinstance(job, Job):
        print(f"submission refused: {job}", file=sys.stderr)
        return 1
    print(f"job {job.id} {job.status.value}", file=sys.stderr)

    while job.status in (JobStatus.PENDING, JobStatus.PROCESSING):
        time.sleep(0.5)
        polled = get_job.sync(job.id, client=client)
        if not isinstance(polled, Job):
            print(f"polling failed: {polled}", file=sys.stderr)
            return 1
        job = polled
        print(f"job {job.id} {job.status.value} {job.progress}%", file=sys.stderr)

    if job.status != JobStatus.COMPLETED:
        print(f"job {job.status.value}: {job.error}", file=sys.stderr)
        return 1
    transcript = get_job_result.sync(job.id, client=client, format_=result_format)
    if isinstance(transcript, Problem) or transcript is None:
        print(f"no transcript: {transcript}", file=sys.stderr)
        return 1
    print(transcript)
    return 0


if __name__ == "__main__":
    sys.exit(main())
