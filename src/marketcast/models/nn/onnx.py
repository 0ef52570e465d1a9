"""ONNX export of torch modules and onnxruntime sessions to run them.

Lives with the networks (not in :mod:`marketcast.training.compress`, which re-exports it) so
that a server, which may import models but never training, can run a network through
onnxruntime: at batch 1 the neural engine's forward pass is ~4.6x faster there than in torch
(``bench/results/compress_rl.json``).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.jit import TracerWarning  # type: ignore[attr-defined]

from marketcast.models.nn.network import BATCH_KEYS, FLAT_OUTPUTS, FlatFootballNet, FootballNet

__all__ = ["OnnxSession", "export_football_net_onnx", "export_onnx", "football_net_onnx_bytes"]


def export_onnx(
    module: nn.Module,
    example_input: Tensor | tuple[Tensor, ...],
    path: str | Path | IO[bytes],
    *,
    input_names: Sequence[str] = ("x",),
    output_names: Sequence[str] = ("logits",),
    opset_version: int = 17,
    dynamic_batch: bool = True,
) -> Path | IO[bytes]:
    """Export ``module`` (tensors ``(B, ...)`` to logits) to ONNX; returns where it wrote.

    ``path`` is a file path (its folder is created) or a binary buffer. Uses the TorchScript
    exporter (``dynamo=False``): for these feed-forward modules it writes one self-contained
    file in a fraction of a second, and onnxruntime's quantiser accepts it. The torch.export-based
    exporter (torch's default since 2.9) took ~6 s for a two-layer MLP here, wrote weights to a
    side file, and its graph failed onnxruntime's dynamic quantisation (shape inference error).
    By default the one input is named ``x`` and the output ``logits``; a module of several
    inputs or outputs names them all. Dim 0 of each is dynamic.
    """
    target: Path | IO[bytes]
    if isinstance(path, str | Path):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
    else:
        target = path
    model = copy.deepcopy(module).eval()
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if len(inputs) != len(input_names):
        raise ValueError(f"{len(inputs)} example inputs for {len(input_names)} input names")
    names = [*input_names, *output_names]
    axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", TracerWarning)
        torch.onnx.export(
            model,
            inputs,
            # The TorchScript exporter writes to a binary buffer too; torch's hints say paths only.
            str(target) if isinstance(target, Path) else target,  # type: ignore[arg-type]
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=opset_version,
            dynamo=False,
        )
    return target


def export_football_net_onnx(
    net: FootballNet, batch: Mapping[str, Tensor], path: str | Path | IO[bytes]
) -> Path | IO[bytes]:
    """Export the neural engine's :class:`FootballNet` to ONNX, traced on the example ``batch``.

    Inputs are named as :data:`BATCH_KEYS` (what :meth:`NeuralModel.make_batch` returns),
    outputs as :data:`FLAT_OUTPUTS`; any batch size runs. Run it with :meth:`OnnxSession.run`.
    """
    flat = FlatFootballNet(net).eval()
    device = next(net.parameters()).device  # trace where the network lives (a GPU fit too)
    return export_onnx(
        flat,
        tuple(batch[key].to(device) for key in BATCH_KEYS),
        path,
        input_names=BATCH_KEYS,
        output_names=FLAT_OUTPUTS,
    )


def football_net_onnx_bytes(net: FootballNet, batch: Mapping[str, Tensor]) -> bytes:
    """:func:`export_football_net_onnx` into memory: the ONNX model as bytes."""
    buffer = io.BytesIO()
    export_football_net_onnx(net, batch, buffer)
    return buffer.getvalue()


def _as_array(x: npt.ArrayLike | Tensor) -> npt.ArrayLike:
    """A tensor as a NumPy array on the host (anything else as it is)."""
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else x


class OnnxSession:
    """An onnxruntime CPU inference session called like a function: ``(B, d) -> logits (B, K)``.

    Parameters
    ----------
    model
        ONNX file (path), or the model's bytes; its first input and output are what ``__call__``
        feeds and returns.
    intra_op_threads
        Threads for one operator; ``None`` uses ``torch.get_num_threads()`` so that latencies are
        comparable with the torch variants.
    """

    def __init__(self, model: str | Path | bytes, *, intra_op_threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.path: Path | None = None if isinstance(model, bytes) else Path(model)
        self._n_bytes = len(model) if isinstance(model, bytes) else None
        self.session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.input_name: str = self.input_names[0]

    def __call__(self, x: npt.ArrayLike | Tensor) -> npt.NDArray[np.float32]:
        batch = np.ascontiguousarray(_as_array(x), dtype=np.float32)
        out = self.session.run(None, {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def run(self, feeds: Mapping[str, npt.ArrayLike | Tensor]) -> dict[str, npt.NDArray[Any]]:
        """Every output by name, for inputs by name (a network of several inputs).

        Each input keeps its dtype (a boolean mask stays boolean, an index int64); the model's
        inputs must all be given, and nothing else.
        """
        missing = set(self.input_names) - set(feeds)
        extra = set(feeds) - set(self.input_names)
        if missing or extra:
            raise ValueError(f"inputs missing: {sorted(missing)}; unexpected: {sorted(extra)}")
        arrays = {name: np.ascontiguousarray(_as_array(value)) for name, value in feeds.items()}
        outputs = self.session.run(self.output_names, arrays)
        return dict(zip(self.output_names, outputs, strict=True))

    @property
    def size_bytes(self) -> int:
        """Size of the ONNX model (its file, or the bytes it was built from)."""
        if self.path is None:
            assert self._n_bytes is not None
            return self._n_bytes
        return self.path.stat().st_size
