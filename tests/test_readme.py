"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
              if 'montage.filters("vgg16"' in b]     # the API section's (others need a cluster, photos, ...)
    assert blocks, "the README has the API example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "block1_conv2 64 filters x 64 channels" in out
    assert "13 conv layers" in out
    assert (tmp_path / "demo" / "index.html").exists()
