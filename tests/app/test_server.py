"""The running server, without a browser: limits are enforced on the server too.

The browser refuses oversized files before sending them (Gradio's ``max_file_size``), but a
script can post straight to the upload endpoint; the server must refuse it with a clear
message and carry on serving.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from matfuse.app.uploads import MAX_UPLOAD_BYTES

httpx = pytest.importorskip("httpx")


def _get_ok(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read().decode()


def test_page_is_served_with_the_app_title(app_server: str):
    html = _get_ok(app_server)  # the page embeds the app config; the browser sets the title
    assert '"title":"matfuse"' in html and "# matfuse" in html


def test_fifty_megabyte_post_is_refused_and_the_server_keeps_serving(
    app_server: str, tmp_path: Path
):
    upload = f"{app_server}gradio_api/upload"
    big = tmp_path / "big.csv"
    line = "CCO," + "1" * 1000 + "\n"
    with open(big, "w") as handle:
        handle.write("smiles,y\n")
        handle.write(line * (50 * 1024 * 1024 // len(line) + 1))
    with httpx.Client(timeout=120) as client:
        with open(big, "rb") as handle:
            refused = client.post(upload, files={"files": ("big.csv", handle, "text/csv")})
        assert refused.status_code == 413
        assert f"maximum allowed size of {MAX_UPLOAD_BYTES} bytes" in refused.text
        # still serving: the page, and a normal upload right after
        small = client.post(upload, files={"files": ("ok.csv", b"smiles,y\nCCO,1\n", "text/csv")})
        assert small.status_code == 200 and small.json()[0].endswith("ok.csv")
    assert "matfuse" in _get_ok(app_server)
