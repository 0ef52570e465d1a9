"""Model compression: int8 quantisation, pruning, 2:4 masks, distillation, ONNX and onnxruntime."""

from __future__ import annotations

import copy
import io
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import prune

from marketcast.models.nn.onnx import OnnxSession, export_football_net_onnx, export_onnx

__all__ = [
    "OnnxSession",
    "SemiStructuredResult",
    "Variant",
    "apply_2_4_mask",
    "compression_report",
    "distill",
    "export_football_net_onnx",
    "export_onnx",
    "is_2_4_sparse",
    "latency_ms",
    "linear_layers",
    "magnitude_prune",
    "make_permanent",
    "mask_2_4",
    "model_size_bytes",
    "onnx_quantize_dynamic",
    "quantize_dynamic_int8",
    "sparse_size_bytes",
    "to_semi_structured",
    "torch_logits_fn",
    "weight_sparsity",
]

LogitsFn = Callable[[Any], npt.NDArray[np.float32]]
History = list[dict[str, float]]


def linear_layers(module: nn.Module) -> Iterator[tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` inside ``module``, with its qualified name."""
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            yield name, sub


def _copy_or_self(module: nn.Module, inplace: bool) -> nn.Module:
    return module if inplace else copy.deepcopy(module)


# --------------------------------------------------------------------------------------------
# quantisation


def quantize_dynamic_int8(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ``nn.Linear`` layers run int8 dynamic quantisation (CPU).

    Weights are stored as int8 (per-tensor affine); activations are quantised on the fly with one
    scale per input tensor (per batch, not per row, so a row's output depends slightly on the
    rows it is batched with; the x86 backend uses 7-bit activations, ``reduce_range``).

    Uses ``torch.ao.quantization.quantize_dynamic``: torch 2.13 still ships it but marks
    eager-mode quantisation deprecated in favour of ``torchao`` (not installed here); its
    ``DeprecationWarning`` is silenced. Other layer types stay float32.
    """
    from torch.ao.quantization import quantize_dynamic

    model = copy.deepcopy(module).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


# --------------------------------------------------------------------------------------------
# ONNX


def onnx_quantize_dynamic(path_in: str | Path, path_out: str | Path) -> Path:
    """int8 dynamic quantisation of an ONNX model with onnxruntime (weights int8, QInt8).

    The model first goes through onnxruntime's ``quant_pre_process`` (shape inference and graph
    optimisation), as onnxruntime recommends before quantising.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(path_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(path_in), str(prepared), skip_symbolic_shape=True)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser warns on the root logger
        try:
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    return out


# --------------------------------------------------------------------------------------------
# pruning and 2:4 masks


def magnitude_prune(
    module: nn.Module,
    amount: float,
    *,
    scope: Literal["layer", "global"] = "layer",
    permanent: bool = True,
    inplace: bool = False,
) -> nn.Module:
    """Zero the ``amount`` share of smallest-|w| weights of every ``nn.Linear`` (biases are kept).

    ``scope="layer"`` prunes each layer to the same sparsity (``round(amount * numel)`` weights,
    :func:`torch.nn.utils.prune.l1_unstructured`); ``"global"`` ranks all Linear weights together.
    ``permanent=True`` folds the mask into the weight (``prune.remove``); ``False`` keeps the mask
    as a forward pre-hook, so training afterwards (e.g. :func:`distill`) keeps pruned weights at
    zero until :func:`make_permanent`.
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    model = _copy_or_self(module, inplace)
    layers = [layer for _, layer in linear_layers(model)]
    if not layers:
        raise ValueError("magnitude_prune: the module has no nn.Linear layer")
    if scope == "global":
        prune.global_unstructured(
            [(layer, "weight") for layer in layers],
            pruning_method=prune.L1Unstructured,
            amount=amount,
        )
    elif scope == "layer":
        for layer in layers:
            prune.l1_unstructured(layer, "weight", amount=amount)
    else:
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    if permanent:
        make_permanent(model)
    return model


def mask_2_4(weight: Tensor) -> Tensor:
    """Boolean mask keeping the 2 largest |w| in each group of 4 consecutive input weights.

    ``weight`` is (out, in). When ``in`` is not a multiple of 4 the last group is padded with
    zeros (which is what a 2:4 kernel needs anyway), so it keeps its 2 largest real weights.

    Examples
    --------
    >>> mask_2_4(torch.tensor([[0.1, -3.0, 2.0, 0.5, 1.0, 0.2]])).int().tolist()
    [[0, 1, 1, 0, 1, 1]]
    """
    n_out, n_in = weight.shape
    groups = _groups_of_4(weight.detach().abs())  # (out, G, 4)
    keep = groups.topk(2, dim=2).indices  # (out, G, 2)
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, keep, True)  # (out, G, 4)
    return mask.view(n_out, -1)[:, :n_in]


def _groups_of_4(values: Tensor) -> Tensor:
    """(out, in) values, zero-padded to a multiple of 4 inputs, as (out, groups, 4)."""
    n_out, n_in = values.shape
    padded = values.new_zeros(n_out, math.ceil(n_in / 4) * 4)
    padded[:, :n_in] = values
    return padded.view(n_out, -1, 4)


def apply_2_4_mask(
    module: nn.Module, *, permanent: bool = True, inplace: bool = False
) -> nn.Module:
    """2:4 semi-structured sparsity on every ``nn.Linear`` weight: 2 of each 4 inputs kept.

    The 50% pattern NVIDIA sparse tensor cores run; on the CPU it only saves storage (see
    :func:`sparse_size_bytes`). ``permanent`` as in :func:`magnitude_prune`.
    """
    model = _copy_or_self(module, inplace)
    layers = list(linear_layers(model))
    if not layers:
        raise ValueError("apply_2_4_mask: the module has no nn.Linear layer")
    for _, layer in layers:
        prune.custom_from_mask(layer, "weight", mask_2_4(layer.weight))
    if permanent:
        make_permanent(model)
    return model


def make_permanent(module: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight and drop the re-parametrisation (in place)."""
    for sub in module.modules():
        if prune.is_pruned(sub) and hasattr(sub, "weight_mask"):
            prune.remove(sub, "weight")
    return module


def is_2_4_sparse(weight: Tensor) -> bool:
    """Whether every group of 4 consecutive input weights holds at most 2 non-zeros.

    Examples
    --------
    >>> is_2_4_sparse(torch.tensor([[0.0, 1.0, 2.0, 0.0, 3.0, 0.0, 0.0, 4.0]]))
    True
    >>> is_2_4_sparse(torch.tensor([[1.0, 1.0, 2.0, 0.0]]))
    False
    """
    nonzero = _groups_of_4((weight.detach() != 0).to(torch.int8))
    return bool((nonzero.sum(dim=2) <= 2).all())


@dataclass(frozen=True)
class SemiStructuredResult:
    """What :func:`to_semi_structured` made: the module and which layers run 2:4 kernels."""

    module: nn.Module
    converted: list[str]
    dense: dict[str, str]  # layer name -> why it stays dense


def to_semi_structured(
    module: nn.Module, *, dtype: torch.dtype = torch.float16, device: str | torch.device = "cuda"
) -> SemiStructuredResult:
    """A copy of a 2:4-masked module on ``device`` in ``dtype``, its Linear weights on 2:4 kernels.

    Each ``nn.Linear`` weight becomes a ``SparseSemiStructuredTensor`` (cuSPARSELt or CUTLASS),
    which multiplies only the kept half of the weights on NVIDIA sparse tensor cores (Ampere
    and newer). The kernels take half precision and shapes that are multiples of a block (for
    float16, 16 or 32 rows by 16 or 64 columns, by backend): a layer the kernel refuses stays
    dense, and :attr:`SemiStructuredResult.dense` says why, so a small network may convert few
    of its layers. Apply :func:`apply_2_4_mask` first: a weight that is not 2:4 would be pruned
    silently by the compression, so it raises ``ValueError`` instead. Inference only.
    """
    from torch.sparse import to_sparse_semi_structured

    for name, layer in linear_layers(module):
        if prune.is_pruned(layer):
            raise ValueError(f"{name}: fold the pruning mask first (make_permanent)")
        if not is_2_4_sparse(layer.weight):
            raise ValueError(f"{name}: the weight is not 2:4 sparse; apply apply_2_4_mask first")
    model = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
    converted: list[str] = []
    dense: dict[str, str] = {}
    for name, layer in linear_layers(model):
        try:
            sparse = to_sparse_semi_structured(layer.weight.detach().contiguous())
        except (RuntimeError, ValueError) as error:  # shape, dtype or device the kernel refuses
            dense[name] = str(error).splitlines()[0]
            continue
        layer.weight = nn.Parameter(sparse, requires_grad=False)
        converted.append(name)
    return SemiStructuredResult(model, converted, dense)


def weight_sparsity(module: nn.Module) -> float:
    """Share of exactly-zero weights over all ``nn.Linear`` weights."""
    zeros = total = 0
    for _, layer in linear_layers(module):
        zeros += int((layer.weight == 0).sum())
        total += layer.weight.numel()
    return zeros / total if total else 0.0


# --------------------------------------------------------------------------------------------
# size and latency


def model_size_bytes(module: nn.Module) -> int:
    """Bytes of ``torch.save(module.state_dict())``: the dense on-disk size, pickle included."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return len(buffer.getvalue())


def sparse_size_bytes(
    module: nn.Module, *, layout: Literal["csr", "2:4"] = "csr", index_bytes: int = 4
) -> int:
    """Raw tensor bytes if the Linear weights were stored sparse; everything else stays dense.

    ``"csr"``: per weight matrix ``nnz * (value bytes + index_bytes) + (rows + 1) * index_bytes``
    (values in their own dtype, int32 column indices and row pointers by default).
    ``"2:4"``: the semi-structured layout of NVIDIA's sparse kernels, 2 values kept per group of
    4 plus 2 bits of position metadata per kept value (the tail group padded), whatever the
    actual zeros. Biases and any other tensors count ``numel * element size``. No pickle
    overhead is included, unlike :func:`model_size_bytes`. A layer still carrying a pruning mask
    (``magnitude_prune(..., permanent=False)``) counts its masked weight once, as it would be
    stored after :func:`make_permanent`; ``weight_orig`` and ``weight_mask`` are not counted.
    """
    if layout not in ("csr", "2:4"):
        raise ValueError(f"layout must be 'csr' or '2:4', got {layout!r}")
    total = 0
    skip: set[int] = set()  # tensors counted through their layer's (masked) weight
    sparse: dict[int, Tensor] = {}  # the weight each Linear stores, by id: counted once
    for _, layer in linear_layers(module):
        weight = layer.weight.detach()  # weight_orig * weight_mask while a mask is attached
        for name in ("weight", "weight_orig", "weight_mask"):
            tensor = getattr(layer, name, None)
            if isinstance(tensor, Tensor):
                skip.add(id(tensor))
        if weight.ndim == 2:
            sparse.setdefault(id(layer.weight), weight)
        else:
            total += weight.numel() * weight.element_size()
    for weight in sparse.values():
        rows, cols = weight.shape
        elt = weight.element_size()
        if layout == "csr":
            nnz = int((weight != 0).sum())
            total += nnz * (elt + index_bytes) + (rows + 1) * index_bytes
        else:
            kept = rows * math.ceil(cols / 4) * 2
            total += kept * elt + math.ceil(kept * 2 / 8)
    for tensor in module.state_dict(keep_vars=True).values():
        if isinstance(tensor, Tensor) and id(tensor) not in skip:
            total += tensor.numel() * tensor.element_size()
    return total


#: Interleaved timing rounds of :func:`compression_report` (see its ``repeats``).
LATENCY_ROUNDS = 5


def latency_ms(
    fn: Callable[[Any], Any], batch: Any, *, repeats: int = 50, warmup: int = 5
) -> float:
    """Median wall-clock milliseconds of ``fn(batch)`` over ``repeats`` calls after a warm-up.

    Runs under ``torch.inference_mode``; the median is robust to a busy shared machine.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(batch)
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(batch)
            times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def torch_logits_fn(module: nn.Module, *, output_key: str | None = None) -> LogitsFn:
    """Wrap a torch module as ``input -> logits array (B, K)``, in eval mode without gradients.

    A NumPy array input becomes a float32 tensor; a tensor or a dict of tensors (a model that
    reads a batch dict) is passed as is. ``output_key`` picks the logits when the module returns
    a dict (e.g. ``"logits_1x2"``).
    """
    module.eval()

    def run(x: Any) -> npt.NDArray[np.float32]:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.inference_mode():
            out = module(x)
        if output_key is not None:
            out = out[output_key]
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    return run


# --------------------------------------------------------------------------------------------
# distillation


def distill(
    teacher: Callable[[Tensor], Tensor] | Tensor,
    student: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> tuple[nn.Module, History]:
    """Train ``student`` (in place) on the teacher's softened outputs and the labels.

    ``loss = alpha T^2 KL(p_T^teacher || p_T^student) + (1 - alpha) CE(y, student)`` with
    ``p_T = softmax(logits / T)`` (Hinton et al., 2015; the T^2 keeps the soft term's gradient
    scale independent of T).

    Parameters
    ----------
    teacher
        A function ``x (N, d) -> logits (N, K)`` (run once, without gradients) or the teacher's
        logits themselves, (N, K).
    student
        Any module ``x (B, d) -> logits (B, K)``. A student carrying pruning masks
        (``permanent=False``) keeps its zeros while it trains.
    x, y
        Inputs (N, d) and integer labels (N,).

    Returns
    -------
    (student, history)
        ``history`` per epoch: ``loss``, ``kl_to_teacher`` (at T, mean over x, after the epoch)
        and ``ce``.
    """
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise ValueError("need 0 <= alpha <= 1 and temperature > 0")
    if isinstance(teacher, Tensor):
        teacher_logits = teacher.detach()
    else:
        with torch.no_grad():
            teacher_logits = teacher(x).detach()
    if teacher_logits.shape[0] != x.shape[0] or y.shape != (x.shape[0],):
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)}, x {tuple(x.shape)} and "
            f"y {tuple(y.shape)} disagree on N"
        )
    gen = torch.Generator().manual_seed(seed)
    teacher_logp = F.log_softmax(teacher_logits / temperature, dim=1)  # (N, K)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    history: History = []
    for epoch in range(epochs):
        student.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            mb = perm[start : start + batch_size]
            logits = student(x[mb])  # (b, K)
            student_logp = F.log_softmax(logits / temperature, dim=1)  # (b, K)
            kl = F.kl_div(student_logp, teacher_logp[mb], log_target=True, reduction="batchmean")
            ce = F.cross_entropy(logits, y[mb])
            loss = alpha * temperature**2 * kl + (1.0 - alpha) * ce
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(mb)
        student.eval()
        with torch.no_grad():
            logits = student(x)
            kl_all = F.kl_div(
                F.log_softmax(logits / temperature, dim=1),
                teacher_logp,
                log_target=True,
                reduction="batchmean",
            )
            ce_all = F.cross_entropy(logits, y)
        history.append(
            {
                "epoch": float(epoch),
                "loss": total / n,
                "kl_to_teacher": float(kl_all),
                "ce": float(ce_all),
            }
        )
    return student, history


# --------------------------------------------------------------------------------------------
# report


@dataclass(frozen=True)
class Variant:
    """One compressed (or reference) model in a :func:`compression_report`.

    Attributes
    ----------
    name
        Row label, e.g. ``"torch_fp32"``.
    logits_fn
        The variant's forward pass: its input -> logits array (B, K).
    size_bytes
        Stored size (state dict or ONNX file).
    sparse_size_bytes
        Size if stored sparse (see :func:`sparse_size_bytes`), or ``None``.
    note
        Free text (what the size means, how the variant was made).
    prepare
        Row indices (B,) -> the input ``logits_fn`` takes; ``None`` means rows of the report's
        ``x`` as a float32 array. Use it for models that read something else (a dict of tensors).
        It runs outside the timed region.
    """

    name: str
    logits_fn: LogitsFn
    size_bytes: int
    sparse_size_bytes: int | None = None
    note: str = ""
    prepare: Callable[[npt.NDArray[np.int64]], Any] | None = None


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _log_loss(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
    picked = np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(picked)))


def _tiled_index(n_rows: int, n: int) -> npt.NDArray[np.int64]:
    """Row indices 0, 1, ... repeated to length ``n`` (for a batch larger than the data)."""
    return np.arange(n, dtype=np.int64) % n_rows


def compression_report(
    variants: Sequence[Variant],
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    roi_fn: Callable[[npt.NDArray[np.float64]], float] | None = None,
    batch_sizes: tuple[int, int] = (1, 256),
    repeats: int = 50,
) -> list[dict[str, Any]]:
    """Size, latency, log loss and ROI of each variant; deltas are against the first variant.

    Parameters
    ----------
    variants
        The reference (full model) first.
    x, y
        Evaluation inputs (N, d) (for variants without ``prepare``) and labels (N,).
    roi_fn
        Probabilities (N, K) -> ROI of the economic backtest (supplied by the caller, which
        may use the evaluation layer); ``None`` leaves ROI out.
    batch_sizes
        Small and large batch for the latencies (the first rows, cycled when N is smaller).
    repeats
        Timed calls per latency, spread over ``LATENCY_ROUNDS`` interleaved rounds: each round
        times every variant in turn (starting one further along each round), and the median of
        the rounds' medians is reported. Timed one variant after another, the machine's drift
        between them read as a speed-up: pruning and 2:4, dense kernels on a CPU, showed 1.7x.

    Returns
    -------
    list of dict
        One row per variant: ``variant, size_bytes, sparse_size_bytes, size_ratio,
        latency_b{small}_ms, latency_b{large}_ms, throughput_ratio_b{small},
        throughput_ratio_b{large}`` (reference latency / variant latency),
        ``log_loss, delta_log_loss, roi, delta_roi``, ``max_abs_prob_diff`` and
        ``mean_abs_prob_diff`` (against the reference's probabilities)
        and ``note``.
    """
    if not variants:
        raise ValueError("compression_report needs at least one variant")
    xs = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    labels = np.asarray(y, dtype=np.int64)
    small, large = batch_sizes
    index = {
        "all": np.arange(len(labels), dtype=np.int64),
        small: _tiled_index(len(labels), small),
        large: _tiled_index(len(labels), large),
    }

    def inputs(v: Variant, idx: npt.NDArray[np.int64]) -> Any:
        return v.prepare(idx) if v.prepare is not None else np.ascontiguousarray(xs[idx])

    batches = [{b: inputs(v, index[b]) for b in (small, large)} for v in variants]
    rounds: list[list[dict[int, float]]] = [[] for _ in variants]
    per_round = max(1, repeats // LATENCY_ROUNDS)
    for r in range(LATENCY_ROUNDS):
        for k in range(len(variants)):
            i = (r + k) % len(variants)  # each round starts one variant further along
            rounds[i].append(
                {
                    b: latency_ms(variants[i].logits_fn, batches[i][b], repeats=per_round)
                    for b in (small, large)
                }
            )
    rows: list[dict[str, Any]] = []
    ref_probs: npt.NDArray[np.float64] | None = None
    ref_row: dict[str, Any] = {}
    for v, timed in zip(variants, rounds, strict=True):
        probs = _softmax(v.logits_fn(inputs(v, index["all"])))
        lat = {b: float(statistics.median(t[b] for t in timed)) for b in (small, large)}
        row: dict[str, Any] = {
            "variant": v.name,
            "size_bytes": v.size_bytes,
            "sparse_size_bytes": v.sparse_size_bytes,
            f"latency_b{small}_ms": lat[small],
            f"latency_b{large}_ms": lat[large],
            "log_loss": _log_loss(labels, probs),
            "roi": roi_fn(probs) if roi_fn is not None else None,
            "note": v.note,
        }
        if ref_probs is None:
            ref_probs, ref_row = probs, row
        row["size_ratio"] = row["size_bytes"] / ref_row["size_bytes"]
        for b in (small, large):
            row[f"throughput_ratio_b{b}"] = ref_row[f"latency_b{b}_ms"] / lat[b]
        row["delta_log_loss"] = row["log_loss"] - ref_row["log_loss"]
        row["delta_roi"] = (
            None if row["roi"] is None or ref_row["roi"] is None else row["roi"] - ref_row["roi"]
        )
        row["max_abs_prob_diff"] = float(np.max(np.abs(probs - ref_probs)))
        row["mean_abs_prob_diff"] = float(np.mean(np.abs(probs - ref_probs)))
        rows.append(row)
    return rows
