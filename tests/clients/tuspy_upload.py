"""Uploads a file with tuspy (the tus Python client), stopping after two chunks and resuming
with a new uploader from the upload's URL, as a client restarted after a crash would.

    tuspy_upload.py ENDPOINT COOKIE FILE
"""

import os
import sys

from tusclient import client


def main() -> None:
    endpoint, cookie, path = sys.argv[1:4]
    tus = client.TusClient(endpoint, headers={"Cookie": cookie})
    first = tus.uploader(
        path,
        chunk_size=1 << 20,
        metadata={"filename": os.path.basename(path)},
        upload_checksum=True,
    )
    first.upload_chunk()
    first.upload_chunk()
    print("stopped at", first.offset, flush=True)

    resumed = tus.uploader(path, chunk_size=2 << 20, url=first.url, upload_checksum=True)
    print("resumed from", resumed.offset, flush=True)
    if resumed.offset != first.offset:
        sys.exit(f"the server reported offset {resumed.offset}, not {first.offset}")
    resumed.upload()
    print("done at", resumed.offset, flush=True)


if __name__ == "__main__":
    main()
