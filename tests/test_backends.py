"""Which encoder a model and a backend give, and the id a store records for them."""

from __future__ import annotations

import os
import subprocess

import pytest

from recs.backends import BACKENDS, TorchEncoder, load_encoder, precision_of
from recs.encoder import HashingEncoder
from recs.errors import ConfigError, ModelError
from recs.models import model_id_of, resolve_model
from recs.onnx import OnnxEncoder
from tests.conftest import BIN
from tests.test_onnx_export import fake_model


def test_backend_choice(tmp_path):
    assert BACKENDS == ("auto", "onnx", "onnx-int8", "torch")
    assert isinstance(load_encoder("hashing", "onnx"), HashingEncoder)
    auto = load_encoder(None, "auto", tmp_path)
    assert isinstance(auto, OnnxEncoder) and auto.precision == "int8"  # the default
    fp32 = load_encoder(None, "onnx", tmp_path)
    int8 = load_encoder(None, "onnx-int8", tmp_path)
    assert isinstance(fp32, OnnxEncoder) and isinstance(int8, OnnxEncoder)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    assert int8.model_id == fp32.model_id + "+int8" and "+" not in fp32.model_id
    assert isinstance(load_encoder(None, "torch", tmp_path), TorchEncoder)
    # A model the export cannot reproduce: auto falls back, an explicit onnx says why.
    cls = fake_model(tmp_path / "cls", pooling={"pooling_mode_cls_token": True})
    assert isinstance(load_encoder(str(cls.path), "auto"), TorchEncoder)
    with pytest.raises(ModelError, match="--backend torch"):
        load_encoder(str(cls.path), "onnx", tmp_path).encode(["a text"])
    with pytest.raises(ConfigError, match="auto, onnx, onnx-int8, torch"):
        load_encoder(None, "tensorflow")


def test_a_store_records_the_precision_it_was_built_with():
    """model_id_of names what load_encoder would record, so a store refuses the other one."""
    spec = resolve_model(None)
    assert spec is not None
    for backend in BACKENDS:
        expected = load_encoder(None, backend).model_id
        assert model_id_of(None, backend) == expected
        assert expected.endswith("+int8") == (precision_of(spec, backend) == "int8")
    assert model_id_of(None, "onnx") == model_id_of(None, "torch") == spec.model_id
    assert model_id_of(None, "onnx-int8") == spec.model_id + "+int8"
    assert model_id_of("hashing", "onnx-int8") == HashingEncoder().model_id


def test_cli_help_lists_the_backends():
    result = subprocess.run(
        [str(BIN / "recs"), "build", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "300"},
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "auto (onnx-int8 when the model allows, else torch), onnx, onnx-int8 or torch" in text
    assert "MiniLM-L6-v2-static, multilingual-e5-small, 'hashing'" in text  # click breaks "all-"


# --- the real model ---------------------------------------------------------------------


def test_the_docker_images_warm_up_command_runs(tmp_path):
    """The Dockerfile makes the model's files while the image is built, with a `python -c`
    line of its own: it must still name what recs has (here with the hashing model)."""
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT

    dockerfile = (ROOT / "Dockerfile").read_text()
    [code] = re.findall(r'RUN python -c "(.*?)"', dockerfile, re.S)
    code = code.replace("\\\n", "")  # the shell joins the lines
    env = {"RECS_MODEL": "hashing", "RECS_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
