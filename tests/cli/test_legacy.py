"""Operators written for the original template are served unchanged by `operator serve`."""

from __future__ import annotations

import textwrap

import pytest

from helpers import PHANTOSCOPE, OperatorProcess, free_port, run_cli

# The original template's utils.py and CustomOperator shape: run(images, urls) over base64
# strings and URLs, properties describing it, model files found under ./data.
UTILS = textwrap.dedent('''
    import base64, os, re, uuid
    LOCAL_TMP_PATH = "./tmp"

    def save_tmp_file(name, file_data=None, url=None):
        os.makedirs(LOCAL_TMP_PATH, exist_ok=True)
        path = os.path.join(LOCAL_TMP_PATH, name + "-" + uuid.uuid4().hex + ".jpg")
        data = re.sub("^data:image/.+;base64,", "", file_data)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
''')

ENCODER = textwrap.dedent('''
    import os
    import numpy as np
    from PIL import Image
    from utils import save_tmp_file

    def model_data_dir():
        return os.path.abspath(os.path.join(".", "data"))

    class CustomOperator:
        def __init__(self):
            with open(os.path.join(model_data_dir(), "scale.txt")) as f:
                self.scale = float(f.read())

        def run(self, images, urls):
            vectors = []
            for image in images:
                path = save_tmp_file("img", image)
                pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
                vectors.append((pixels.mean(axis=(0, 1)) * self.scale).tolist() + [1.0])
            return vectors

        @property
        def name(self):
            return "legacy_mean_encoder"

        @property
        def type(self):
            return "encoder"

        @property
        def input(self):
            return "image"

        @property
        def output(self):
            return "vector"

        @property
        def dimension(self):
            return "4"

        @property
        def metric_type(self):
            return "L2"
''')

PROCESSOR = textwrap.dedent('''
    import base64, io
    from PIL import Image
    from utils import save_tmp_file

    class CustomOperator:
        def run(self, images, urls):
            result = []
            for image in images:
                picture = Image.open(save_tmp_file("img", image)).convert("RGB")
                crops = []
                for box in ((0, 0, 100, 100), (100, 100, 200, 200)):
                    buffer = io.BytesIO()
                    picture.crop(box).save(buffer, format="JPEG")
                    crops.append(base64.b64encode(buffer.getvalue()).decode())
                result.append(crops)
            return result

        name = property(lambda self: "legacy_tiles")
        type = property(lambda self: "processor")
        input = property(lambda self: "image")
        output = property(lambda self: "image")
        dimension = property(lambda self: "-1")
        metric_type = property(lambda self: "-1")
''')


@pytest.mark.parametrize(("source", "expect"), [
    (ENCODER, ["name=legacy_mean_encoder type=encoder", "vector size: 1; data size: 0",
               "vector dim: 4", "metric=L2"]),
    (PROCESSOR, ["name=legacy_tiles type=processor", "vector size: 0; data size: 2"]),
])
def test_original_template_operator_is_served_unchanged(tmp_path, source, expect):
    folder = tmp_path / "example-custom-operator"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "scale.txt").write_text("0.5")
    (folder / "utils.py").write_text(UTILS)
    (folder / "custom_operator.py").write_text(source)
    endpoint = f"127.0.0.1:{free_port()}"
    with OperatorProcess(command=[PHANTOSCOPE, "operator", "serve", str(folder)],
                         endpoint=endpoint,
                 env={"OP_ENDPOINT": endpoint}, cwd=tmp_path):
        result = run_cli("operator", "test", "-e", endpoint)
        broken = run_cli("operator", "test", "-e", endpoint, "--image", __file__)
        again = run_cli("operator", "test", "-e", endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    for text in expect:
        assert text in result.stdout
    # A non-image is refused before the wrapped code sees it, and the server keeps serving.
    assert broken.returncode == 1 and "INVALID_ARGUMENT" in broken.stderr
    assert "datas[0]: not a recognised image format" in broken.stderr
    assert again.returncode == 0


# The original `example-custom-operator/custom_operator.py` as it came: every property raises.
UNFILLED_TEMPLATE = textwrap.dedent('''
    import os
    import logging
    from utils import save_tmp_file


    class CustomOperator:
        def __init__(self):
            self.model_init = False
            self.device_str = os.environ.get("device_id", "/cpu:0")

        def run(self, images, urls):
            raise NotImplementedError

        @property
        def name(self):
            raise NotImplementedError("Must define name")

        @property
        def type(self):
            raise NotImplementedError("Must define type")

        @property
        def input(self):
            raise NotImplementedError("Must define input")

        @property
        def output(self):
            raise NotImplementedError("Must define output")

        @property
        def dimension(self):
            raise NotImplementedError("Must define dimension")

        @property
        def metric_type(self):
            raise NotImplementedError("Must define metric_type")
''')


def test_the_unfilled_original_template_says_in_one_line_what_to_fill_in(tmp_path):
    folder = tmp_path / "example-custom-operator"
    folder.mkdir()
    (folder / "utils.py").write_text(UTILS)
    (folder / "custom_operator.py").write_text(UNFILLED_TEMPLATE)
    result = run_cli("operator", "serve", str(folder), "--port", str(free_port()), timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "fill in" in lines[0] and "name" in lines[0] and "metric_type" in lines[0]
    assert "CustomOperator" in lines[0] and str(folder / "custom_operator.py") in lines[0]
