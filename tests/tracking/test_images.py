"""Step images written by ffexp.tracking.images, read back through MLflow's client: the same
file names as MLflow's own ``log_image``, the pixels as given, a thumbnail that fits 256 px."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from PIL import Image

from ffexp.tracking.images import log_step_images, png_bytes

#: MLflow's step-image name, as its UI parses it
NAME = re.compile(r"^images/(?P<key>[^+]+)\+step\+(?P<step>\d+)\+timestamp\+\d+\+"
                  r"[0-9a-f-]{36}(?P<compressed>\+compressed)?\.(?P<ext>png|webp)$")


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_bytes_decode_to_the_same_pixels(tmp_path):
    rgb = _image(37, 53, 0)
    (tmp_path / "a.png").write_bytes(png_bytes(rgb))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)


def test_named_and_tagged_as_mlflow_log_image(store):
    client = MlflowClient(store)
    ours = client.create_run(client.create_experiment("e")).info.run_id
    theirs = client.create_run(client.get_experiment_by_name("e").experiment_id).info.run_id
    wide, square = _image(244, 504, 1), _image(240, 240, 2)
    assert log_step_images(client, ours, {"flow/a": [(0, wide), (7, wide)],
                                          "b": [(7, square)]}) == 3
    client.log_image(theirs, wide, key="flow/a", step=7)

    def files(run_id):
        out = {}
        for a in client.list_artifacts(run_id, "images"):
            m = NAME.match(a.path)
            assert m, a.path
            out[(m["key"], int(m["step"]), m["ext"], bool(m["compressed"]))] = a.path
        return out
    mine, mlflows = files(ours), files(theirs)
    assert set(mlflows) == {("flow~a", 7, "png", False), ("flow~a", 7, "webp", True)}
    assert set(mine) == {(k, s, e, c) for k, s in (("flow~a", 0), ("flow~a", 7), ("b", 7))
                         for e, c in (("png", False), ("webp", True))}
    for run_id in (ours, theirs):
        assert client.get_run(run_id).data.tags["mlflow.loggedImages"] == "True"

    def read(run_id, path):
        return np.asarray(Image.open(client.download_artifacts(run_id, path)).convert("RGB"))
    np.testing.assert_array_equal(read(ours, mine[("flow~a", 7, "png", False)]), wide)
    np.testing.assert_array_equal(read(ours, mine[("b", 7, "png", False)]), square)
    # thumbnails fit MLflow's 256 px square: the wide one halved (box filter), lossless
    thumb = read(ours, mine[("flow~a", 7, "webp", True)])
    assert thumb.shape == (122, 252, 3)
    np.testing.assert_array_equal(thumb, np.asarray(Image.fromarray(wide).reduce(2)))
    assert max(read(theirs, mlflows[("flow~a", 7, "webp", True)]).shape[:2]) == 256
    # one png and one webp per image, sharing the stem (the UI pairs them by it)
    stems = {Path(p).name.removesuffix(".png").removesuffix("+compressed.webp") for p in mine.values()}
    assert len(stems) == 3
